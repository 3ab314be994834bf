"""The explicit searches' memory bound (--max-memory).

A breadth-first search keeps every visited state, so a large scope grows until the machine runs
out of memory. The searches read their own resident set size (/proc/self/statm) after each
chunk of the frontier and stop, inconclusive, once it passes the bound; the default bound is half
of the memory available when the run starts (MemAvailable in /proc/meminfo).
"""

from __future__ import annotations

import os
import re

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?)([KMGT]?)(?:i?B)?", re.ASCII | re.IGNORECASE)


def parse_size(text: str) -> int:
    """`4G`, `512M`, `1.5GiB`, `100000000` (bytes) -> bytes; ValueError if malformed or 0."""
    m = _SIZE.fullmatch(text.strip())
    if not m:
        raise ValueError(f"bad size {text!r}: want a number of bytes with an optional K, M, G "
                         "or T suffix (e.g. 4G)")
    n = int(float(m.group(1)) * _UNITS[m.group(2).upper()])
    if n <= 0:
        raise ValueError(f"bad size {text!r}: must be more than 0 bytes")
    return n


def rss_bytes() -> int:
    """This process's resident set size (the second field of /proc/self/statm, in pages)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def mem_available() -> int | None:
    """MemAvailable from /proc/meminfo, in bytes (None if it cannot be read)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def default_limit() -> int | None:
    """Half of MemAvailable now: the rest stays for the kernel, other programs and the overshoot
    of the chunk being expanded when the bound is crossed."""
    avail = mem_available()
    return avail // 2 if avail else None


def human(n: int) -> str:
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        size = _UNITS[unit[0]]
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


class MemoryLimitExceeded(Exception):
    """A search passed its memory bound (message: how far it got)."""


def over(limit: int | None, extra: int = 0) -> bool:
    """Whether resident memory plus `extra` bytes about to be allocated passes `limit`."""
    return limit is not None and rss_bytes() + extra > limit
