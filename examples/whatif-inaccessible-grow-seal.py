# What if MFD_INACCESSIBLE files could take F_SEAL_GROW?
# A delta on the v5 patch: an inaccessible memfd starts unsealed, and F_ADD_SEALS on it
# accepts F_SEAL_GROW only (EPERM for anything else).
inaccessible = lambda s: s.flag("INACCESSIBLE")  # noqa: E731

design = base("v5-inaccessible").derive(
    "v5+grow-seal",
    "v5 MFD_INACCESSIBLE, but inaccessible files may be sealed against growth",
    edit={
        "memfd_create": lambda a: a.amend_rule(
            "ok", lambda s: {"seals": If(inaccessible(s), 0, s.seals)}),
        "fcntl_add_seals": lambda a: a.insert_rule(
            lambda s, seals: fail("EPERM", when=inaccessible(s) & ((seals & ~F_SEAL_GROW) != 0),
                                  label="inaccessible_only_grow"),
            before="sealed"),
    },
)
