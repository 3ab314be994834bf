"""model/lang/design.py: a design (schema, initial states, actions), derived designs and scopes."""

from __future__ import annotations

from model import designs
from model.lang import Design


def test_expected_walks_the_base_chain() -> None:
    from properties.catalogue import load

    cat = load()
    memfd = designs.get("memfd")
    child = memfd.derive("memfd-child", "")
    grandchild = child.derive("memfd-grandchild", "",
                              expect={"grow-seal-size-monotone": "holds"})
    designs.add(child, source="test")
    try:
        p, g = cat["exec-seal-mode-fixed"], cat["grow-seal-size-monotone"]
        assert p.expected(child) == p.expected(grandchild) == "violated"
        assert g.expected(grandchild) == "holds" and g.expected(child) == "violated"
        assert "memfd-child" not in designs.names()  # a what-if is not a built-in design
    finally:  # leave the registry as it was for the tests that list the built-in designs
        for table in (designs._BUILDERS, designs._CACHE, designs._WHATIF):
            table.pop("memfd-child", None)


def test_design_is_a_dataclass_with_expect() -> None:
    d = designs.get("memfd").derive("memfd-e", "", expect={"seals-only-grow": "holds"})
    assert isinstance(d, Design) and d.expect == {"seals-only-grow": "holds"}
    assert d.origin is not None and d.origin[0].endswith("test_design.py")
