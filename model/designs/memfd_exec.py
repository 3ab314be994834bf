"""exec of a memfd: execveat(fd, "", argv, envp, AT_EMPTY_PATH) (glibc's fexecve()) and
execve("/proc/self/fd/N", ...). The model judges exec's checks on the inode, in the kernel's
order (fs/exec.c do_open_execat()): the permission to execute, then the inode's write count.
The content is not modelled, so a permitted exec is the model's ENOEXEC (no binary format
takes it); an exec that runs the file, or a #! script that fails later, is outside the model
(Action.unjudged). Probed on 6.18.44 (tests/test_exec.py's table, as root).

The write count (i_writecount) is not a state field: it counts the open file descriptions that
open() made with write access (do_dentry_open(): FMODE_WRITER), which the trace's handle table
knows (its descriptions' "writecount", Action.describes; Action.writers); memfd_create()'s
own description holds none (alloc_file_pseudo() skips it). So, like the calls at f_pos, the
engines do not explore exec.
"""

from __future__ import annotations

from model.designs.memfd_state import FD, FD_KINDS, have_fd
from model.lang import Action, E, Param, Rule, fail, nat
from model.lang.callspec import Argv, C, Fd, ProcFd
from model.lang.schema import StateView

#: descriptions with write access on the inode: bound from the trace's handle table
WRITERS = Param("writers", nat(fixed=1024), (),
                "open file descriptions open()ed with write access (the inode's i_writecount; "
                "the trace's handle table holds it)", symbolic_domain=True)
#: why a success (or a failure after the image was read) is not judged
CONTENT = (("ok", "ENOENT"),
           "exec runs the file's content, which the model does not hold: a binary or a #! "
           "script succeeds (a script through a close-on-exec descriptor fails later, ENOENT)")


def exec_body(s: StateView, fd: E, writers: E) -> list[Rule]:
    """do_execveat_common() -> do_open_execat(): may_open() -> inode_permission(MAY_EXEC)
    (generic_permission(): the caller is root, whose CAP_DAC_OVERRIDE executes a file with any
    x bit and none without), then exe_file_deny_write_access() (ETXTBSY while i_writecount >
    0), then bprm_execve() -> search_binary_handler(): ENOEXEC for content no format takes."""
    return [
        have_fd(s, fd),
        fail("EACCES", when=(s.mode & 0o111) == 0, label="no_exec_bit",
             why="may_open() -> inode_permission(MAY_EXEC): no x bit in i_mode"),
        fail("ETXTBSY", when=writers > 0, label="write_access",
             why="do_open_execat() -> exe_file_deny_write_access(): i_writecount > 0 (a "
                 "description open()ed for writing)"),
        fail("ENOEXEC", label="no_binary_format",
             why="search_binary_handler(): no binary format takes the model's content"),
    ]


ARGV = Argv()
ENVP = Argv("the environment: exec's checks on the file do not read it", "[]")

EXEC = Action(
    "exec", (Param("fd", FD, tuple(range(len(FD_KINDS)))), WRITERS), exec_body, "execveat",
    (Fd("fd"), C('""'), ARGV, ENVP, C("AT_EMPTY_PATH")),
    "exec the file (fexecve: execveat(fd, \"\", argv, envp, AT_EMPTY_PATH)): its permission "
    "and write-count checks",
    also=(("execve", (ProcFd("fd"), ARGV, ENVP)),), writers="writers", unjudged=CONTENT)


__all__ = ["CONTENT", "EXEC", "WRITERS", "exec_body"]
