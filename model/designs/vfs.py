"""VFS checks shared by every file system the designs model (no design is registered here)."""

from __future__ import annotations

from model.lang.expr import E, Or
from model.vocab import (
    FALLOC_FL_COLLAPSE_RANGE,
    FALLOC_FL_INSERT_RANGE,
    FALLOC_FL_KEEP_SIZE,
    FALLOC_FL_MODE_MASK,
    FALLOC_FL_PUNCH_HOLE,
    FALLOC_FL_UNSHARE_RANGE,
    FALLOC_FL_WRITE_ZEROES,
    FALLOC_FL_ZERO_RANGE,
)


def fallocate_mode_unsupported(mode: E) -> E:
    """vfs_fallocate() (fs/open.c) answers EOPNOTSUPP, before it looks at FMODE_WRITE, for
    unknown bits, several modes at once, PUNCH_HOLE without KEEP_SIZE, and COLLAPSE/INSERT/
    WRITE_ZEROES with KEEP_SIZE."""
    keep = mode.has(FALLOC_FL_KEEP_SIZE)
    mm = mode & FALLOC_FL_MODE_MASK
    return Or(
        (mode & ~(FALLOC_FL_MODE_MASK | FALLOC_FL_KEEP_SIZE)) != 0,
        ~Or(*(mm == v for v in (0, FALLOC_FL_UNSHARE_RANGE, FALLOC_FL_ZERO_RANGE,
                                FALLOC_FL_PUNCH_HOLE, FALLOC_FL_COLLAPSE_RANGE,
                                FALLOC_FL_INSERT_RANGE, FALLOC_FL_WRITE_ZEROES))),
        (mm == FALLOC_FL_PUNCH_HOLE) & ~keep,
        Or(*(mm == v for v in (FALLOC_FL_COLLAPSE_RANGE, FALLOC_FL_INSERT_RANGE,
                               FALLOC_FL_WRITE_ZEROES))) & keep,
    )


__all__ = ["fallocate_mode_unsupported"]
