# What if hugetlbfs_setattr() checked F_SEAL_EXEC as shmem_setattr() does (the B15 fix)?
# Every expected verdict is inherited from memfd except the two this fix changes.
design = base("memfd").derive(
    "memfd+hugetlbfs-exec-seal",
    "memfd 6.18 with hugetlbfs_setattr() enforcing F_SEAL_EXEC",
    edit={"fchmod": lambda a: a.replace_rule("exec_seal", lambda s, mode: fail(
        "EPERM", when=s.seals.has(F_SEAL_EXEC) & ((s.mode ^ mode) & 0o111 != 0),
        label="exec_seal", why="shmem_setattr() and, with the fix, hugetlbfs_setattr()"))},
    expect={"exec-seal-mode-fixed": "holds", "noexec-seal-never-executable": "holds"},
)
