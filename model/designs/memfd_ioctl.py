"""ioctl requests every file answers: the ones do_vfs_ioctl() handles itself (close-on-exec,
O_NONBLOCK), and ENOTTY for a terminal's, which shmem and hugetlbfs files have no handler for
(fs/ioctl.c; probed on 6.18.44, tests/test_open_modes.py). Programs make them without asking
what the descriptor is: isatty() is TCGETS, Python's os.set_blocking() is FIONBIO.
FS_IOC_* (chattr) are memfd_fsflags.py's."""

from __future__ import annotations

from model.designs.memfd_state import FD, FD_ALL, have_fd
from model.lang import Action, E, Param, Rule, boolean, enum, fail, integer, ok, word
from model.lang.callspec import C, Choice, Fd, Harmless, Ptr
from model.lang.schema import StateView
from model.vocab import O_NONBLOCK, SETFL_FLAGS, TTY_IOCTLS


def fioclex_body(s: StateView, fd: E, on: E) -> list[Rule]:
    """FIOCLEX/FIONCLEX: do_vfs_ioctl() -> set_close_on_exec(); a descriptor flag, which the
    model accepts and does not track (its exec never replaces the process)."""
    return [have_fd(s, fd), ok(0)]


def fionbio_body(s: StateView, fd: E, on: E, status: E) -> list[Rule]:
    """FIONBIO: do_vfs_ioctl() -> ioctl_fionbio(): get_user() of the int, then O_NONBLOCK set
    in f_flags if it is non-zero, cleared if zero (Action.redescribes: the description's
    "status"; F_GETFL shows it)."""
    return [have_fd(s, fd), ok(0)]


def notty_body(s: StateView, fd: E, req: E) -> list[Rule]:
    """A terminal request: not one of do_vfs_ioctl()'s, nor file_ioctl()'s for a regular file
    (-ENOIOCTLCMD), and vfs_ioctl() finds no ->unlocked_ioctl in shmem's or hugetlbfs's
    file_operations: ENOTTY (what isatty() reports)."""
    return [have_fd(s, fd),
            fail("ENOTTY", label="no_unlocked_ioctl",
                 why="vfs_ioctl(): !filp->f_op->unlocked_ioctl")]


def _status(on: int, status: int) -> dict[str, int]:
    return {"status": (status & ~O_NONBLOCK) | (O_NONBLOCK if on else 0)}


#: not explored: the search's descriptions hold no status flags and no close-on-exec; replay
#: judges these from the handle table (memfd_explored.REPLAY_ACTIONS)
IOCTL_ACTIONS = (
    Action("fioclex", (Param("fd", FD, FD_ALL), Param("on", boolean(), ())), fioclex_body,
           "ioctl", (Fd("fd"), Choice("on", {1: "FIOCLEX", 0: "FIONCLEX"})),
           "ioctl(FIOCLEX/FIONCLEX): the descriptor's close-on-exec flag"),
    Action("fionbio", (Param("fd", FD, FD_ALL),
                       Param("on", integer(-(1 << 31), (1 << 31) - 1), (), "the int read"),
                       Param("status", word(32, SETFL_FLAGS), (), "the description's "
                             "O_NONBLOCK and O_NOATIME (the handle table)",
                             symbolic_domain=(0,))),
           fionbio_body, "ioctl",
           (Fd("fd"), C("FIONBIO"), Ptr("on", "EFAULT (get_user() of the int)")),
           "ioctl(FIONBIO): set or clear the description's O_NONBLOCK",
           from_desc=(("status", "fd", "status"),),
           redescribes=lambda p: _status(p["on"], p["status"])),
    Action("ioctl_notty", (Param("fd", FD, FD_ALL),
                           Param("req", enum(*TTY_IOCTLS), ())),
           notty_body, "ioctl",
           (Fd("fd"), Choice("req", dict(enumerate(TTY_IOCTLS))),
            Harmless("the struct a terminal would fill: the call fails before it")),
           "ioctl(TCGETS, TIOCGWINSZ...): a terminal request, ENOTTY"),
)

__all__ = ["IOCTL_ACTIONS"]
