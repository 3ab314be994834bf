"""Built-in designs, by name. Each module registers a builder; designs are built lazily."""

from __future__ import annotations

from collections.abc import Callable

from model.lang.design import Design

_BUILDERS: dict[str, Callable[[], Design]] = {}
_CACHE: dict[str, Design] = {}
#: built-in designs checked on request only (`check --design NAME`, `conform --design NAME`)
_ON_REQUEST: set[str] = set()


def register(name: str, *, on_request: bool = False
             ) -> Callable[[Callable[[], Design]], Callable[[], Design]]:
    """Register a design builder. `on_request`: left out of the default list (names()), so a
    default `shmemcheck check` and the tests that walk every design do not grow with it;
    listed by `shmemcheck list` and names(include_corpus=True) (the manifest)."""
    def deco(fn: Callable[[], Design]) -> Callable[[], Design]:
        _BUILDERS[name] = fn
        if on_request:
            _ON_REQUEST.add(name)
        return fn
    return deco


def on_request(name: str) -> bool:
    """A design of another kernel (memfd@6.1 ...): checked when named, not by default."""
    _load_all()
    return name in _ON_REQUEST


def _modules() -> list[str]:
    import pkgutil

    return [f"{__name__}.{m.name}" for m in pkgutil.iter_modules(__path__)]


def _load_all() -> None:
    """Import every module of this package: each registers its designs."""
    import importlib

    for m in _modules():
        importlib.import_module(m)


def is_corpus(name: str) -> bool:
    """Bug-corpus designs come in LKMM-style -broken/-fixed pairs (`shmemcheck corpus`)."""
    return name.endswith(("-broken", "-fixed"))


def names(include_corpus: bool = False) -> list[str]:
    """The built-in designs; the bug corpus's pairs and the designs checked on request only
    (register(on_request=True): the other kernels' designs) only when asked for. Designs added
    by what-if files (add()) are not built-in and are not listed."""
    _load_all()
    # the built-in designs, then the corpus; each in module order, then registration order:
    # the same list whichever module a caller happened to import first
    order = {m: i for i, m in enumerate(_modules())}
    listed = [n for n in _BUILDERS if n not in _WHATIF
              and (include_corpus or not (is_corpus(n) or n in _ON_REQUEST))]
    return sorted(listed, key=lambda n: (is_corpus(n),
                                         order.get(_BUILDERS[n].__module__, len(order))))


def get(name: str) -> Design:
    _load_all()
    if name not in _BUILDERS:
        raise KeyError(name)
    if name not in _CACHE:
        _CACHE[name] = _BUILDERS[name]()
    return _CACHE[name]


#: designs added by what-if files in this run: name -> the file that defined it
_WHATIF: dict[str, str] = {}


def is_whatif(name: str) -> bool:
    """The design was defined by a what-if file in this run (model/whatif.py)."""
    return name in _WHATIF


def add(design: Design, source: str = "") -> None:
    """Make a design built elsewhere (a what-if file) known by name for this run."""
    _load_all()
    if design.name in _WHATIF:
        raise ValueError(f"design name {design.name!r} is already defined by what-if file "
                         f"{_WHATIF[design.name]}: give each what-if its own name")
    if design.name in _BUILDERS:
        raise ValueError(f"design name {design.name!r} is a built-in design's: give the "
                         "what-if its own name")
    _CACHE[design.name] = design
    _BUILDERS[design.name] = lambda: design
    _WHATIF[design.name] = source or "(unknown file)"
