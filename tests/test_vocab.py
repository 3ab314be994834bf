"""model/vocab.py: every uapi constant, errno and signal number the model uses, against this
machine's kernel headers (/usr/include, compiled with the C compiler, so macros such as
_IOWR() and the MFD_HUGE_* encodings are evaluated by the headers themselves). A constant the
installed headers predate (guest_memfd's, 6.8+) is listed and not checked, never guessed."""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest

from model import vocab

HEADERS = ["linux/memfd.h", "linux/fcntl.h", "linux/falloc.h", "linux/mman.h",
           "linux/kvm.h", "linux/fs.h", "sys/stat.h", "asm-generic/errno.h", "signal.h",
           "linux/udmabuf.h", "asm/ioctls.h"]

#: Present in every header set this project supports (memfd sealing is 3.17, F_SEAL_EXEC 6.3):
#: these must be checked, not skipped.
CORE = ["MFD_CLOEXEC", "MFD_ALLOW_SEALING", "MFD_HUGETLB", "F_ADD_SEALS", "F_GET_SEALS",
        "S_IFREG", "AT_EMPTY_PATH",
        "F_SEAL_SEAL", "F_SEAL_SHRINK", "F_SEAL_GROW", "F_SEAL_WRITE", "F_SEAL_FUTURE_WRITE",
        "FALLOC_FL_KEEP_SIZE", "FALLOC_FL_PUNCH_HOLE", "PROT_READ", "PROT_WRITE", "MAP_SHARED",
        "MAP_PRIVATE", "O_RDWR", "KVMIO", "KVM_CREATE_VM", "KVM_CHECK_EXTENSION", "EPERM",
        "EINVAL", "EBUSY", "SIGSEGV", "SIGBUS"]


def model_constants() -> dict[str, int]:
    """Every name the model takes from a uapi header, with the model's value."""
    names = [n for n in dir(vocab) if n.isupper() and not n.startswith("_")
             and isinstance(getattr(vocab, n), int)
             and n not in ("PAGE_SIZE", "HPAGE_SIZE", "MFD_ALL_FLAGS", "MFD_INACCESSIBLE_V5",
                           "MFD_HUGE_MASK", "F_ALL_SEALS", "FALLOC_FL_MODE_MASK")]
    out = {n: int(getattr(vocab, n)) for n in names}
    out.update(vocab.MFD_HUGE_SIZES)
    out.update(vocab.ERRNO)
    out.update(vocab.SIGNALS)
    return out


@cache
def header_values(tmp: str) -> dict[str, int | None]:
    """NAME -> its value in the installed headers (None: the headers do not define it)."""
    names = model_constants()
    src = "#include <stdio.h>\n" + "".join(f"#include <{h}>\n" for h in HEADERS)
    src += "int main(void) {\n"
    for n in names:
        src += (f'#ifdef {n}\n  printf("{n} %lld\\n", (long long)({n}));\n#else\n'
                f'  printf("{n} -\\n");\n#endif\n')
    src += "  return 0;\n}\n"
    c, exe = Path(tmp) / "vocab.c", Path(tmp) / "vocab"
    c.write_text(src)
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc is not None
    subprocess.run([cc, "-o", str(exe), str(c)], check=True, capture_output=True, text=True)
    done = subprocess.run([str(exe)], check=True, capture_output=True, text=True)
    vals: dict[str, int | None] = {}
    for line in done.stdout.splitlines():
        n, v = line.split()
        vals[n] = None if v == "-" else int(v)
    return vals


@pytest.fixture(scope="module")
def headers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, int | None]:
    if not (shutil.which("cc") or shutil.which("gcc")):
        pytest.skip("no C compiler (cc/gcc) to read the uapi headers with")
    if not Path("/usr/include/linux/memfd.h").exists():
        pytest.skip("no kernel uapi headers in /usr/include (linux-libc-dev)")
    return header_values(str(tmp_path_factory.mktemp("vocab")))


def test_constants_equal_the_installed_headers(headers: dict[str, int | None]) -> None:
    model = model_constants()
    wrong = {n: (v, headers[n]) for n, v in model.items()
             if headers[n] is not None and headers[n] != v}
    assert wrong == {}, "model value vs header value"
    missing = sorted(n for n in CORE if headers[n] is None)
    assert missing == [], "the headers lack constants every supported kernel has"


def test_ioctl_numbers_are_derived_from_kvmio() -> None:
    """kvm.h's _IO/_IOW/_IOWR encodings, also where the headers predate guest_memfd."""
    assert (vocab.KVM_CREATE_VM, vocab.KVM_CHECK_EXTENSION) == (0xAE01, 0xAE03)
    assert vocab.KVM_CREATE_GUEST_MEMFD == 0xC040AED4
    assert vocab.KVM_SET_USER_MEMORY_REGION2 == 0x40A0AE49


def test_flag_tables_hold_the_constants() -> None:
    for table in (vocab.MFD_FLAGS, vocab.SEALS, vocab.FALLOC_FLAGS, vocab.PROT_FLAGS,
                  vocab.MAP_FLAGS, vocab.GMEM_FLAGS, vocab.MEMSLOT_FLAGS):
        for n, v in table.items():
            assert vocab.CONSTANTS[n] == v == getattr(vocab, n), n
    assert vocab.F_ALL_SEALS == sum(vocab.SEALS.values())
    assert vocab.render_flags(vocab.MFD_HUGETLB | 0x100, vocab.MFD_FLAGS) == "MFD_HUGETLB|0x100"
    assert vocab.parse_flags("MFD_HUGETLB|0x100") == vocab.MFD_HUGETLB | 0x100


#: The constants uapi headers older than 6.18 lack, with their value as the upstream headers
#: define it (kernel-semantics.md §1.1, §2.1 and §5.3 in ../shared/reference; falloc.h's
#: FALLOC_FL_WRITE_ZEROES from the 6.17 patch "fs: introduce FALLOC_FL_WRITE_ZEROES"), and
#: the kernel-internal ones no uapi header has: mm/memfd.c's MFD_NAME_MAX_LEN is NAME_MAX (255)
#: less strlen("memfd:") (the live kernel's 249/250-byte names are in test_names_fds.py).
UPSTREAM_6_18 = {
    "MFD_NOEXEC_SEAL": 0x0008, "MFD_EXEC": 0x0010, "F_SEAL_EXEC": 0x20,
    "FALLOC_FL_WRITE_ZEROES": 0x80, "KVM_CREATE_GUEST_MEMFD": 0xC040AED4,
    "KVM_SET_USER_MEMORY_REGION2": 0x40A0AE49, "KVM_CAP_GUEST_MEMFD": 234,
    "KVM_CAP_GUEST_MEMFD_FLAGS": 244, "GUEST_MEMFD_FLAG_MMAP": 1 << 0,
    "GUEST_MEMFD_FLAG_INIT_SHARED": 1 << 1, "KVM_MEM_GUEST_MEMFD": 1 << 2,
    "MFD_NAME_MAX_LEN": 255 - len("memfd:"),
    "PIPE_BYTES": 16 * 4096,  # PIPE_DEF_BUFFERS (include/linux/pipe_fs_i.h) pages
    # include/uapi/linux/fs.h: RWF_NOAPPEND (6.9), RWF_ATOMIC (6.11), RWF_DONTCACHE (6.14);
    # include/linux/fs.h's RWF_SUPPORTED on 6.18, every RWF_* bit through RWF_NOSIGNAL
    # (0x100, 6.16): on 6.18.44 0x100 is accepted and 0x200 is EOPNOTSUPP
    # (tests/test_decision_tables.py IOV)
    "RWF_NOAPPEND": 0x20, "RWF_ATOMIC": 0x40, "RWF_DONTCACHE": 0x80,
    "RWF_SUPPORTED_6_18": 0x1FF,
    # include/uapi/asm-generic/fcntl.h names it FASYNC; glibc's O_ASYNC needs _GNU_SOURCE
    "O_ASYNC": 0o20000,
}


def test_constants_the_headers_lack_equal_upstream(headers: dict[str, int | None]) -> None:
    """Every model constant is checked: by the installed headers, or else by this table."""
    model = model_constants()
    unchecked = {n for n, v in headers.items() if v is None}
    assert unchecked <= set(UPSTREAM_6_18), sorted(unchecked - set(UPSTREAM_6_18))
    assert {n: model[n] for n in UPSTREAM_6_18} == UPSTREAM_6_18
    for n, v in UPSTREAM_6_18.items():  # where the headers are new enough, they agree too
        assert headers[n] in (None, v), n


def test_a_new_pipe_holds_pipe_bytes() -> None:
    """The live kernel's default pipe size (F_GETPIPE_SZ of a new pipe) is vocab.PIPE_BYTES,
    the most splice_write moves (more is refused as outside the model)."""
    import fcntl
    import os

    rd, wr = os.pipe()
    try:
        assert fcntl.fcntl(wr, fcntl.F_GETPIPE_SZ) == vocab.PIPE_BYTES
    finally:
        os.close(rd)
        os.close(wr)


def test_an_enumeration_is_never_rendered_as_ored_names() -> None:
    """madvise's advice is one value, not a flag word: 27 has no name (strace: `0x1b /*
    MADV_??? */`), though MADV_DONTNEED_LOCKED (24) | MADV_WILLNEED (3) would OR to it."""
    from model.designs.memfd import ACTIONS
    from model.lang.callspec import Flags
    from traces.concretize import _render_arg, _text

    (spec,) = [s for a in ACTIONS if a.name == "madvise" for s in a.args
               if isinstance(s, Flags)]
    family = dict(spec.family)
    assert spec.enum and family["MADV_DONTNEED_LOCKED"] | family["MADV_WILLNEED"] == 27
    text = {v: _text(_render_arg(spec, {"advice": v}, {}, {})) for v in (27, 8, 0, -5)}
    assert "MADV" not in text[27] and vocab.parse_flags(text[27]) == 27, text
    assert "MADV_FREE" in text[8] and "MADV_NORMAL" in text[0] and "-5" in text[-5], text
    assert vocab.render_flags(27, family) != vocab.render_enum(27, family)
