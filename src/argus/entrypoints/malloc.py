"""glibc malloc settings: web workers copy multi-megabyte published bodies every tick, the engine builds them."""

from __future__ import annotations

import ctypes
import os

M_MMAP_THRESHOLD = -3  # mallopt parameter number, from glibc's <malloc.h>
#: Blocks this size and up get their own mapping: the published /predictions/current body is ~8 MB for
#: 1,000 servers, everything per request is far smaller.
LARGE_BLOCK_BYTES = 1 << 20


def map_large_blocks(threshold: int = LARGE_BLOCK_BYTES) -> bool:
    """Give every block of ``threshold`` bytes or more its own mmap, so freeing it returns it to the OS.

    Why: glibc raises its mmap threshold to the size of each mapped block freed (up to 32 MiB). After
    the first tick, the workers' copies of the published bodies (the text from the database, its
    bytes, the gzip) come from the heap of whichever of the worker's threads read them, each thread
    its own arena, and freed copies stay in the process: a web worker's RSS climbed by 70 MB in a
    10-minute soak with the Python heap flat. A fixed threshold turns the raise off. Returns False
    where the C library has no ``mallopt`` (not glibc): nothing changes there.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, threshold))


def release_free_memory() -> bool:
    """Hand the free pages of every malloc arena back to the OS (glibc's ``malloc_trim(0)``).

    Why the engine calls this after each tick: a tick frees many multi-megabyte blocks (forecast
    arrays, the rendered bodies, their SQL copies) whose sizes move from tick to tick, and the raised
    mmap threshold (see ``map_large_blocks``) serves them from the heap. Freed, they sit below blocks
    that live on (windows, caches), where glibc's own trimming, which only cuts the top of the heap,
    cannot reach them: in-process soaks of 300 servers held ~200 MB more and kept climbing with the
    Python heap flat. Mapping every large block, as the workers do, levelled it off too but cost
    the engine page faults on every tick's arrays (~25 % more tick CPU); a trim takes 6-18 ms after
    a 1,000-server tick of ~13 CPU seconds. Returns whether memory was released; False where the C
    library has no ``malloc_trim`` (not glibc).
    """
    try:
        malloc_trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return False
    return bool(malloc_trim(0))


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def memory_report() -> str | None:
    """One line on this process's memory: resident set, and what malloc holds in use and free (all arenas).

    The engine logs it after each tick's trim: a resident set that grows while malloc's in-use bytes
    stay flat is fragmentation, one that grows with them is something kept. None where neither
    ``/proc/self/statm`` nor glibc's ``mallinfo2`` exists.
    """
    parts = []
    try:
        with open("/proc/self/statm") as statm:
            parts.append(f"rss {int(statm.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20:,.0f} MB")
    except (OSError, ValueError, IndexError):
        pass
    try:
        mallinfo2 = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        mallinfo2 = None
    if mallinfo2 is not None:
        mallinfo2.restype = _MallInfo2
        info = mallinfo2()
        parts.append(f"malloc in use {(info.uordblks + info.hblkhd) / 2**20:,.0f} MB "
                     f"(mapped {info.hblkhd / 2**20:,.0f} MB), free {info.fordblks / 2**20:,.0f} MB")
    return ", ".join(parts) or None
