"""The memfd design's calls at the open file description's f_pos: write, read, writev,
readv (the rules of pwrite64, pread64, pwritev, preadv at that offset: memfd_rw.py),
sendfile within the memfd (to the out description's f_pos) and lseek. f_pos is not a state
field: a trace's handle table keeps it (Action.fpos, NOTES.md "f_pos belongs to the trace"),
so the engines do not explore these actions."""

from __future__ import annotations

from model.designs.memfd_data import SEEK_DATA, SEEK_HOLE
from model.designs.memfd_pages import LOFF, SIZE
from model.designs.memfd_rw import (
    DESC_APPEND,
    DESC_READ,
    SEEK_CUR,
    SEEK_END,
    SEEK_SET,
    appends_now,
    count_param,
    fmode_read_param,
    lseek_body,
    o_append_param,
    preadv2_fpos_body,
    pwritev2_fpos_body,
    read_body,
    readv_body,
    sendfile_body,
    write_body,
    writev_body,
)
from model.designs.memfd_state import FD, FD_KINDS
from model.lang import Action, Param, integer, word
from model.lang.callspec import Bytes, C, Fd, Flags, IoCnt, IoVec, Num, Ptr
from model.vocab import RWF_FLAGS

FD_PARAM = Param("fd", FD, tuple(range(len(FD_KINDS))))


def fpos_param(name: str) -> Param:
    """The f_pos of a write/read/lseek: bound from the trace's handle table, never explored.
    write/read call it `off`, where their data lands, as pwrite64 does (so one delta on a
    write path's rules fits them all)."""
    return Param(name, LOFF, (), "the description's f_pos (the trace's handle table holds it)",
                 symbolic_domain=True)


#: sendfile()'s NULL offset
SENDFILE_NULL = ("the in description's f_pos, read and advanced beside the out one's; the "
                 "model judges sendfile from a given offset ([N])")

SEEK_WHENCE = {"SEEK_SET": SEEK_SET, "SEEK_CUR": SEEK_CUR, "SEEK_END": SEEK_END,
               "SEEK_DATA": SEEK_DATA, "SEEK_HOLE": SEEK_HOLE}

FPOS_ACTIONS: tuple[Action, ...] = (
    # write/read/lseek at the description's f_pos, which the handle table of a trace holds
    # (Action.fpos): judged in replay, not explored (FPOS has no values to explore);
    # pwrite64/pread64 explore the same rules at every offset of the grid (NOTES.md)
    Action("write", (FD_PARAM, fpos_param("off"),
                     count_param(()), o_append_param()),
           write_body, "write", (Fd("fd"), Bytes(), Num("len")),
           "write count bytes at the description's f_pos", fpos=("off", "advance"),
           appends=appends_now, from_desc=DESC_APPEND),
    Action("read", (FD_PARAM, fpos_param("off"),
                    count_param((), reads=True),
                    fmode_read_param()),
           read_body, "read", (Fd("fd"), Bytes('""'), Num("len")),
           "read count bytes at the description's f_pos", fpos=("off", "advance"),
           from_desc=DESC_READ),
    Action("writev", (FD_PARAM, fpos_param("off"),
                      count_param((), "the iovecs' total length (size_t)"),
                      o_append_param()),
           writev_body, "writev", (Fd("fd"), IoVec("len"), IoCnt()),
           "writev an iovec array at the description's f_pos", fpos=("off", "advance"),
           appends=appends_now, from_desc=DESC_APPEND),
    Action("readv", (FD_PARAM, fpos_param("off"),
                     count_param((), "the iovecs' total length (size_t)", reads=True),
                     fmode_read_param()),
           readv_body, "readv", (Fd("fd"), IoVec("len", '""'), IoCnt()),
           "readv into an iovec array at the description's f_pos", fpos=("off", "advance"),
           from_desc=DESC_READ),
    # pwritev2()/preadv2() at pos -1: do_writev()/do_readv() with the rwf_t flags at f_pos
    Action("pwritev2_fpos", (FD_PARAM, fpos_param("off"),
                             count_param((), "the iovecs' total length (size_t)"),
                             Param("flags", word(32, RWF_FLAGS), (), "rwf_t"),
                             o_append_param()),
           pwritev2_fpos_body, "pwritev2",
           (Fd("fd"), IoVec("len"), IoCnt(), C("-1"), Flags("flags", RWF_FLAGS)),
           "pwritev2 at pos -1: an iovec array at the description's f_pos",
           fpos=("off", "advance"),
           appends=appends_now, from_desc=DESC_APPEND),
    Action("preadv2_fpos", (FD_PARAM, fpos_param("off"),
                            count_param((), "the iovecs' total length (size_t)", reads=True),
                            Param("flags", word(32, RWF_FLAGS), (), "rwf_t"),
                            fmode_read_param(), o_append_param()),
           preadv2_fpos_body, "preadv2",
           (Fd("fd"), IoVec("len", '""'), IoCnt(), C("-1"), Flags("flags", RWF_FLAGS)),
           "preadv2 at pos -1: into an iovec array at the description's f_pos",
           fpos=("off", "advance"),
           from_desc=DESC_READ + DESC_APPEND),
    # sendfile() within the memfd: in at an explicit offset ([N]), out at its f_pos
    Action("sendfile", (FD_PARAM, fpos_param("off"), Param("fd_in", FD, ()),
                        Param("off_in", LOFF, (), "*offset: where the in file is read"),
                        Param("len", SIZE, (), "count, in bytes (size_t)"),
                        fmode_read_param(), o_append_param()),
           sendfile_body, "sendfile",
           (Fd("fd"), Fd("fd_in"), Ptr("off_in", SENDFILE_NULL), Num("len")),
           "copy count bytes of the file from *offset to the out description's f_pos "
           "(both descriptors name it)", fpos=("off", "advance"),
           from_desc=(("fmode_read", "fd_in", "read"), ("o_append", "fd", "append"))),
    Action("lseek", (FD_PARAM, fpos_param("pos"),
                     Param("off", LOFF, (), "offset (loff_t)"),
                     Param("whence", integer(0, (1 << 32) - 1), (), "whence (unsigned int)")),
           lseek_body, "lseek",
           (Fd("fd"), Num("off"), Flags("whence", SEEK_WHENCE, zero="SEEK_SET", enum=True)),
           "move the description's f_pos", fpos=("pos", "set")),
)

__all__ = ["FPOS_ACTIONS", "SEEK_WHENCE", "fpos_param"]
