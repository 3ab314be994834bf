"""The one writer of every output (--out, -o, --certificate, --graph, conform, corpus).

A regular file is replaced atomically: a temporary file in the same directory, then rename(2),
so a reader never sees half a file. A symlink is written *through*: its target is what gets
replaced (or created), the link itself stays. A character device or a FIFO (/dev/stdout,
/dev/null, a named pipe) is opened and written directly, as a shell redirection would.
Anything else (a directory, a socket, a block device) is refused: nothing that is not a
regular file is ever replaced. `check_output` / `check_output_dir` find an unwritable path
before a run starts, so a long run never ends in a traceback after its results.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile


class OutputError(Exception):
    """An output path that cannot be written; the message is one line naming the path."""


def _why(e: OSError) -> str:
    return e.strerror or str(e)


def _first_existing(path: str) -> str:
    """`path` or its nearest existing ancestor (what must be a writable directory)."""
    p = path
    while not os.path.lexists(p):
        up = os.path.dirname(p)
        if up == p:
            break
        p = up
    return p


def _probe_dir(display: str, d: str) -> None:
    """Can a file be created in directory `d` (or in the ancestor directories that would be
    made for it)? Tried for real with a temporary file: access(2) does not see a read-only
    mount, /proc, or a full quota in advance."""
    anc = _first_existing(d)
    if not os.path.isdir(anc):
        raise OutputError(f"cannot write {display}: {anc} is not a directory")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-probe-", dir=anc)
    except OSError as e:
        raise OutputError(f"cannot write {display}: cannot create files in {anc}: {_why(e)}"
                          ) from None
    os.close(fd)
    os.unlink(tmp)


def check_output(path: str) -> None:
    """Raise OutputError unless `write_text(path, ...)` can succeed (as far as can be known
    before writing: a full device is only found when written)."""
    target = os.path.realpath(path)
    try:
        st = os.stat(target)
    except FileNotFoundError:
        _probe_dir(path, os.path.dirname(target))
        return
    except OSError as e:
        raise OutputError(f"cannot write {path}: {_why(e)}") from None
    if stat.S_ISREG(st.st_mode):
        _probe_dir(path, os.path.dirname(target))
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode):
        if not os.access(target, os.W_OK):
            raise OutputError(f"cannot write {path}: permission denied")
    elif stat.S_ISDIR(st.st_mode):
        raise OutputError(f"cannot write {path}: is a directory")
    else:
        raise OutputError(f"cannot write {path}: not a regular file, character device or "
                          "FIFO (refused: it would be replaced)")


def check_output_dir(path: str) -> None:
    """Raise OutputError unless files can be written into directory `path` (made if
    missing)."""
    target = os.path.realpath(path)
    if os.path.lexists(target) and not os.path.isdir(target):
        raise OutputError(f"cannot write into {path}: not a directory")
    _probe_dir(path, target)


def write_text(path: str, text: str) -> None:
    """Write `text` (UTF-8) to `path`: see the module docstring for what each kind of path
    gets. Raises OutputError (one line) when it cannot, KeyboardInterrupt after a Ctrl-C
    (a run that was asked to stop writes nothing more)."""
    from checker.interrupt import requested

    if requested():
        raise KeyboardInterrupt
    target = os.path.realpath(path)  # through every symlink; a dangling one names what to make
    try:
        st: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise OutputError(f"cannot write {path}: {_why(e)}") from None
    if st is not None and (stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode)):
        try:
            with open(target, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as e:
            raise OutputError(f"cannot write {path}: {_why(e)}") from None
        return
    if st is not None and not stat.S_ISREG(st.st_mode):
        what = "is a directory" if stat.S_ISDIR(st.st_mode) else (
            "not a regular file, character device or FIFO (refused: it would be replaced)")
        raise OutputError(f"cannot write {path}: {what}")
    d = os.path.dirname(target)
    try:
        os.makedirs(d, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=d)
    except OSError as e:
        if e.errno == errno.EEXIST or isinstance(e, NotADirectoryError):
            raise OutputError(f"cannot write {path}: {_first_existing(d)} is not a "
                              "directory") from None
        raise OutputError(f"cannot write {path}: {_why(e)}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        if st is not None:  # keep the replaced file's mode (and owner, where allowed)
            os.chmod(tmp, stat.S_IMODE(st.st_mode) & 0o777)
            try:
                os.chown(tmp, st.st_uid, st.st_gid)
            except PermissionError:
                pass
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # as open() would create it, not mkstemp's 0600
        os.replace(tmp, target)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise OutputError(f"cannot write {path}: {_why(e)}") from None
        raise
