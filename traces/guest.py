"""Run traces on another kernel: one boot under QEMU (TCG) runs a whole batch.

The traces are lowered by the C exporter (traces/export/c.py: the same C call per step as a
reproducer) into ONE static program, the guest's /init (runtime: traces/export/runtime/guest.c
around repro.c's step helpers). It runs each trace in a forked child, as the host's executor
does, and prints KTAP on the serial console: one line per step with the outcome it observed,
then a diagnostic line with the file's seals, size and mode (what the host's executor observes,
less the mapping probes).
`run_batch` parses the console back into a traces.kernel.KernelRun per trace, so the host's
comparison code (checker/kernel_replay.py judge) judges it. A guest that does not finish in
time leaves its unfinished traces without a result (an error, never a pass).

No /dev/kvm in a TCG guest (nested KVM fails on these machines, and TCG has no VMX): steps
that open it are skipped with the reason. Huge pages come from the kernel command line
(`hugepages=N`); vm.memfd_noexec is set in a new pid namespace, as on the host.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from model import vocab
from traces.export.c import (
    RUNTIME_SECTIONS,
    c_call,
    c_constants,
    fill,
    kvm_constants,
    runtime_section,
)
from traces.export.common import ExportError, runtime_sections
from traces.export.lower import (
    Op,
    creates_fd,
    lower,
    names_shm,
    plain_operands,
    uses_gmem,
    uses_hugetlb,
    uses_shm,
)
from traces.kernel import KernelRun, Observation
from traces.rawsys import ename, sig_name
from traces.replayed import Replayed
from traces.syscalls import SYSCALLS
from traces.trace import Err, New, Outcome, Ret, Sig

__all__ = ["BatchItem", "BootResult", "GuestError", "boot", "build_program", "initramfs",
           "newc", "outcome_word", "parse_ktap", "parse_observation", "program", "run_batch"]

HUGEPAGES = 4  # 2 MiB pages reserved by the guest's command line (each trace needs <= 2)
STEP_LIMIT = 60  # seconds a trace may take in the guest before it is killed (TCG is slow)
BOOT_SECONDS = 90.0  # allowance for boot and power-off, on top of the traces' own time
PER_STEP_SECONDS = 0.5

#: repro.c's sections the batch takes, in repro.c's order ("base" and "signal" are replaced by
#: guest.c's "base": a step reports its outcome instead of asserting one)
_REPRO_SECTIONS = ("newfd", *(s for s in RUNTIME_SECTIONS if s != "signal"))


class GuestError(Exception):
    """The batch could not be built or booted: one line for the user."""


@dataclass
class BatchItem:
    """One trace of a batch: its name (for the KTAP subtest), the replayed trace (every
    outcome concrete) and the vm.memfd_noexec it starts from (None: the guest's)."""

    name: str
    replayed: Replayed
    noexec: int | None = None


@dataclass
class BootResult:
    """One boot: each item's run (None where the guest printed no result), the console, the
    wall time, and why the boot is inconclusive (a timeout, QEMU failing), if it is."""

    runs: list[KernelRun | None]
    console: str
    seconds: float
    problem: str | None = None
    steps: int = 0
    skipped_lowering: dict[int, str] = field(default_factory=dict)


# ---- the program --------------------------------------------------------------------------------
def outcome_word(o: Outcome) -> str:
    """An outcome as guest.c's observe() prints it: R <ret>, E <errno>, S <signo>, N <name>."""
    if isinstance(o, Ret):
        return f"R {o.value}"
    if isinstance(o, Err):
        return f"E {vocab.ERRNO[o.errno]}" if o.errno in vocab.ERRNO else f"E {o.errno}"
    if isinstance(o, Sig):
        signo = {v: k for k, v in vocab.SIGNAL_NAME.items()}.get(o.name)
        return f"S {signo}" if signo is not None else f"S {o.name}"
    if isinstance(o, New):
        return f"N {o.name}"
    raise ExportError(f"no outcome to compare with ({o!r})")


def parse_outcome(word: str) -> Outcome:
    """guest.c's outcome words back to an Outcome, named as the host's executor names them."""
    kind, _, v = word.strip().partition(" ")
    if kind == "R":
        return Ret(int(v))
    if kind == "E":
        return Err(ename(int(v)))
    if kind == "S":
        return Sig(sig_name(int(v)))
    if kind == "N":
        return New(v)
    raise ValueError(f"unknown outcome {word!r}")


def _c_str(s: str) -> str:
    return '"' + "".join(c if c.isalnum() or c in " ._-/@:+" else f"\\{ord(c):03o}"
                         for c in s.encode("ascii", "backslashreplace").decode()) + '"'


def _newfd(op: Op) -> int | None:
    """dup2/dup3's newfd operand, as the trace numbers it."""
    if op.call not in SYSCALLS or not SYSCALLS[op.call].plain:
        return None
    for p, v in plain_operands(op):
        if p.kind == "newfd" and isinstance(v, int):
            return v
    return None


def _observe_kind(op: Op) -> str:
    if _newfd(op) is not None:
        return "OBS_NEWFD"
    if op.call == "memfd_create" or (op.call == "open" and names_shm(op)):
        # the file the host's executor observes after each step
        return "OBS_FILE"
    if creates_fd(op):
        return "OBS_FD"
    if op.call == "mmap":
        return "OBS_MAP"
    if op.call == "mremap":  # m itself or a new mapping, as sys_mremap() observed
        return "OBS_REMAP"
    if op.call in SYSCALLS and SYSCALLS[op.call].returns == "pin":
        return "OBS_PIN"
    return "OBS_RET"


def _trace_fn(k: int, item: BatchItem, ops: Sequence[Op], need: set[str]) -> str:
    lines = [f"static void trace_{k}(void)", "{",
             f"\tcur_nsteps = {len(ops)};",
             f"\tcur_uses_hugetlb = {int(uses_hugetlb(ops))};",
             f"\tcur_needs_gmem = {int(uses_gmem(ops))};"]
    if item.noexec is not None or any(op.call == "memfd_create" for op in ops):
        lines += ["\tcur_step = 1;", f"\tsetup_noexec({item.noexec or 0});"]
    if uses_shm(ops):
        need.add("shm")
        lines += ["\tcur_step = 1;", "\tsetup_shm();"]
    for op in ops:
        if op.call == "fork_vma":
            raise ExportError(f"step {op.n}: fork_vma: the batch program runs no fork's child "
                              "(its traces share one process, one after another)")
        call = c_call(op, need)
        nf = _newfd(op)
        if nf is not None:
            lines.append(f"\tcur_newfd = {nf};")
        lines += [f"\tcur_step = {op.n};",
                  f"\tobserve({call}, {_observe_kind(op)}, {_c_str(outcome_word(op.expect))});"]
    return "\n".join([*lines, "}", ""])


_HUGETLB_SKIP = 'skip("hugetlbfs: memfd_create(MFD_HUGETLB) is not supported here");'


def _hugetlb_lacking(text: str) -> str:
    """repro.c's memfd_create helper skips the trace when MFD_HUGETLB fails with ENODEV (or
    ENOENT, ENOSYS): in a reproducer that asserts success, the machine lacks hugetlbfs. In the
    batch the failure is only a *reason* (`lacking`): observe() skips when the trace wanted
    something else, and reports the errno when the trace wanted it (memfd_create of a huge
    page size without an hstate is ENODEV on every kernel)."""
    if _HUGETLB_SKIP not in text:
        raise GuestError("repro.c's memfd_create helper changed: traces/guest.py "
                         "_hugetlb_lacking() no longer finds its skip()")
    return text.replace(_HUGETLB_SKIP, 'lacking = "hugetlbfs: memfd_create(MFD_HUGETLB) is '
                        'not supported here";')


def program(items: Sequence[BatchItem], *, selftest: bool = False
            ) -> tuple[str, dict[int, str]]:
    """The batch program's C text, and the items left out (index -> why: the C exporter
    cannot lower them). With `selftest` (checker/selftest.py) the program is an ordinary
    test too: it sets up and powers off a guest only when it runs as PID 1, and exits with
    kselftest's status (1 when a trace is not ok)."""
    need: set[str] = set()
    fns: list[str] = []
    names: list[str] = ["MFD_HUGETLB"]
    left_out: dict[int, str] = {}
    runs: list[tuple[int, BatchItem, int]] = []
    for k, item in enumerate(items, 1):
        try:
            ops = lower(item.replayed)
            for op in ops:
                outcome_word(op.expect)
            fn = _trace_fn(k, item, ops, need)
        except ExportError as e:
            left_out[k - 1] = f"no C lowering: {e}"
            continue
        names += [n for op in ops for n in op.names]
        fns.append(fn)
        runs.append((k, item, len(ops)))
    errno_cases = "".join(f"\tcase {e}: return \"{e}\";\n" for e in vocab.ERRNO)
    parts = ["// SPDX-License-Identifier: GPL-2.0\n/* Generated by shmemcheck (traces/guest.py):"
             f" {len(items)} traces, run as the guest's /init. */\n",
             runtime_section("head"), "\n", c_constants(list(dict.fromkeys(names))),
             fill(runtime_sections("guest.c", "//@ section")["base"], "ERRNO_CASES",
                  errno_cases)]
    for name in _REPRO_SECTIONS:
        text = runtime_section(name)
        if name == "kvm":
            text = fill(text, "KVM_CONSTANTS", kvm_constants("cur_needs_gmem"))
        elif name == "unpin":
            text = fill(text, "RING_RELEASE",
                        "\tif (pn->ring > 0) {\n\t\tring_release(pn);\n\t\treturn r;\n\t}\n")
        elif name == "create":
            text = _hugetlb_lacking(text)
        parts.append(text)
    setup = "\tif (getpid() == 1)\n\t\tguest_setup();" if selftest else "\tguest_setup();"
    main = ["", "int main(void)", "{", setup, '\tprintf("KTAP version 1\\n");',
            f'\tprintf("1..{len(items)}\\n");']
    for k, item, n in runs:
        main.append(f"\trun_one({k}, {_c_str(item.name)}, trace_{k}, {n}, {STEP_LIMIT});")
    for i in left_out:
        main.append(f'\tprintf("ok {i + 1} %s # SKIP no C lowering\\n", {_c_str(items[i].name)});')
    if selftest:
        main += [f"\tn_skip += {len(left_out)};",
                 '\tprintf("# Totals: pass:%d fail:%d skip:%d\\n", n_pass, n_not_ok, n_skip);',
                 "\tif (getpid() == 1)\n\t\tguest_done();",
                 "\treturn n_not_ok ? KSFT_FAIL : KSFT_PASS;", "}", ""]
    else:
        main += ["\tguest_done();", "\treturn 0;", "}", ""]
    return "".join(parts) + "\n" + "\n".join(fns) + "\n".join(main), left_out


def build_program(c_text: str, out: Path) -> None:
    """gcc -static -O1 (glibc static): the guest has no libraries."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise GuestError("no C compiler (gcc) to build the guest program")
    src = out.with_suffix(".c")
    src.write_text(c_text)
    p = subprocess.run([cc, "-static", "-O1", "-Wall", "-Wno-unused-function", "-o", str(out),
                        str(src)], capture_output=True, text=True, check=False)
    if p.returncode != 0:
        first = next((ln for ln in p.stderr.splitlines() if "error" in ln), p.stderr.strip())
        raise GuestError(f"the guest program does not build ({cc} -static): {first}")


# ---- the initramfs ------------------------------------------------------------------------------
def newc(entries: Sequence[tuple[str, int, bytes, tuple[int, int]]]) -> bytes:
    """A cpio archive in the "newc" format (what the kernel's initramfs unpacker reads):
    entries (name, mode with file type bits, data, (rdev major, minor)), then the trailer."""
    out = bytearray()

    def put(ino: int, name: str, mode: int, data: bytes, rdev: tuple[int, int]) -> None:
        raw = name.encode() + b"\0"
        nlink = 2 if mode & 0o170000 == 0o040000 else 1
        fields = (ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1], len(raw), 0)
        out.extend(b"070701" + b"".join(f"{v:08x}".encode() for v in fields) + raw)
        out.extend(b"\0" * (-len(out) % 4))
        out.extend(data)
        out.extend(b"\0" * (-len(out) % 4))

    for ino, (name, mode, data, rdev) in enumerate(entries, 1):
        put(ino, name, mode, data, rdev)
    put(0, "TRAILER!!!", 0, b"", (0, 0))
    return bytes(out)


def initramfs(init: bytes) -> bytes:
    """A gzip'd newc archive holding /init and the directories and console it needs."""
    return gzip.compress(newc([
        ("dev", 0o040755, b"", (0, 0)),
        ("dev/console", 0o020600, b"", (5, 1)),
        ("proc", 0o040555, b"", (0, 0)),
        ("init", 0o100755, init, (0, 0)),
    ]), compresslevel=6)


# ---- the console --------------------------------------------------------------------------------
_TOP = re.compile(r"^(not ok|ok) (\d+) (.*?)(?: # (.*))?$")
_PRINTK = re.compile(r"\[ *[0-9]+\.[0-9]+\] .*$")
_STEP = re.compile(r"^ {4}(not ok|ok) (\d+) step \d+ # (outcome|SKIP) ?(.*)$")
_OBS = re.compile(r"^ {4}# obs (-|E\d+|\d+) (-|\d+) (-|[0-7]+)$")


def parse_observation(line: str) -> Observation | None:
    """guest.c's observe_file() line as the host executor's Observation (no mapping probes:
    the guest does not probe its mappings), or None if `line` is not one."""
    m = _OBS.match(line)
    if m is None:
        return None
    seals_w, size_w, mode_w = m.groups()
    seals: int | str = ("EBADF" if seals_w == "-" else ename(int(seals_w[1:]))
                        if seals_w.startswith("E") else int(seals_w))
    return Observation(seals, None if size_w == "-" else int(size_w),
                       None if mode_w == "-" else int(mode_w, 8), {})


def parse_ktap(console: str, n: int) -> list[KernelRun | None]:
    """Each trace's KernelRun from the batch's KTAP (n traces; None: no result line, the
    guest stopped first). Lines that are not KTAP (the kernel's own) are ignored."""
    runs: list[KernelRun | None] = [None] * n
    outcomes: list[Outcome] = []
    observations: list[Observation] = []
    skip: str | None = None
    unreadable: str | None = None
    for raw in console.splitlines():
        # a kernel message cut into a line (only where the results share the console)
        line = _PRINTK.sub("", raw.rstrip("\r"))
        ob = parse_observation(line)
        if ob is not None:
            if len(observations) < len(outcomes):
                observations.append(ob)
            continue
        m = _STEP.match(line)
        if m:
            if m.group(3) == "SKIP":
                skip = skip or m.group(4)
            else:
                try:
                    outcomes.append(parse_outcome(m.group(4)))
                except ValueError:
                    unreadable = unreadable or line.strip()
            continue
        if line.startswith("    KTAP version"):
            outcomes, observations, skip, unreadable = [], [], None, None
            continue
        m = _TOP.match(line)
        if not m or not 1 <= int(m.group(2)) <= n:
            continue
        directive = m.group(4) or ""
        k = int(m.group(2)) - 1
        # one observation per step, or none (a guest program without observe_file())
        obs = observations if observations and len(observations) == len(outcomes) else None
        if unreadable is not None:
            runs[k] = KernelRun(outcomes, obs, None,
                                f"in the guest: unreadable result line {unreadable!r}")
        elif directive.startswith("SKIP"):
            runs[k] = KernelRun(outcomes, obs, skip or directive[4:].strip() or "skipped",
                                None)
        elif directive.startswith(("TIMEOUT", "ERROR")):
            runs[k] = KernelRun(outcomes, obs, None, f"in the guest: {directive.lower()}")
        else:
            runs[k] = KernelRun(outcomes, obs, None, None)
        outcomes, observations, skip, unreadable = [], [], None, None
    return runs


# ---- the boot -----------------------------------------------------------------------------------
def boot(vmlinuz: Path, initrd: Path, *, timeout: float, hugepages: int = HUGEPAGES,
         qemu: str = "qemu-system-x86_64") -> tuple[str, str, float, str | None]:
    """Boot under TCG (never -enable-kvm: nested KVM fails here) with the console on stdout
    and the program's results on a second serial port (a file); (results, console, wall
    seconds, problem or None). The results are the console's KTAP when the guest had no
    second port."""
    results = initrd.parent / "results.ktap"
    results.write_bytes(b"")
    cmd = [qemu, "-accel", "tcg", "-cpu", "max", "-smp", "1", "-m", "512", "-nographic",
           "-no-reboot", "-kernel", str(vmlinuz), "-initrd", str(initrd), "-append",
           f"console=ttyS0 panic=-1 loglevel=4 hugepages={hugepages}",
           "-serial", "mon:stdio", "-serial", f"file:{results}"]
    t0 = time.monotonic()
    try:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, start_new_session=True)
    except FileNotFoundError:
        return "", "", 0.0, f"{qemu} not found (apt-get install qemu-system-x86)"
    try:
        stdout, stderr = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with suppress(OSError):  # QEMU and anything it started
            os.killpg(p.pid, signal.SIGKILL)
        stdout, _ = p.communicate()
        console = stdout.decode("utf-8", "replace")
        return (_results(results, console), console, time.monotonic() - t0,
                f"the guest did not finish within {timeout:.0f} s (a hung guest: no verdict)")
    except BaseException:  # Ctrl-C: no QEMU outlives the run
        with suppress(OSError):
            os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        raise
    out = stdout.decode("utf-8", "replace")
    problem = None
    if p.returncode != 0:
        err = stderr.decode("utf-8", "replace").strip().splitlines()
        problem = f"{qemu} exited with status {p.returncode}" + (f": {err[-1]}" if err else "")
    text = _results(results, out)
    if problem is None and "# shmemcheck: batch done" not in text:
        problem = "the guest stopped before the batch was done"
    return text, out, time.monotonic() - t0, problem


def _results(path: Path, console: str) -> str:
    """The second serial port's text, or the console's if nothing came there."""
    try:
        text = path.read_bytes().decode("utf-8", "replace")
    except OSError:
        text = ""
    return text if text.strip() else console


def run_batch(vmlinuz: Path, items: Sequence[BatchItem], *, qemu: str = "qemu-system-x86_64",
              keep: Path | None = None) -> BootResult:
    """Build the batch program, boot it once, and parse each trace's run."""
    c_text, left_out = program(items)
    steps = sum(len(it.replayed.steps) for k, it in enumerate(items) if k not in left_out)
    with tempfile.TemporaryDirectory(prefix="shmemcheck-guest-") as tmp:
        work = Path(tmp)
        build_program(c_text, work / "init")
        initrd = work / "initrd.gz"
        initrd.write_bytes(initramfs((work / "init").read_bytes()))
        timeout = boot_timeout(steps, len(items))
        text, console, seconds, problem = boot(vmlinuz, initrd, timeout=timeout, qemu=qemu)
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            for f in ("init.c",):
                shutil.copyfile(work / f, keep / f)
            (keep / "console.log").write_text(console)
            (keep / "results.ktap").write_text(text)
    runs = parse_ktap(text, len(items))
    for k, why in left_out.items():
        runs[k] = KernelRun([], None, why, None)
    return BootResult(runs, console, seconds, problem, steps, left_out)


def boot_timeout(steps: int, traces: int) -> float:
    """Seconds a boot may take: $SHMEMCHECK_GUEST_TIMEOUT if set, else an allowance for boot
    and power-off plus a share per step and per trace."""
    v = os.environ.get("SHMEMCHECK_GUEST_TIMEOUT")
    if v:
        try:
            return max(1.0, float(v))
        except ValueError:
            raise GuestError(f"SHMEMCHECK_GUEST_TIMEOUT={v!r}: want a number of seconds"
                             ) from None
    return BOOT_SECONDS + PER_STEP_SECONDS * steps + 2.0 * traces


def env_keep_dir() -> Path | None:
    """$SHMEMCHECK_GUEST_KEEP: a directory to keep the batch program and console in."""
    v = os.environ.get("SHMEMCHECK_GUEST_KEEP")
    return Path(v) if v else None
