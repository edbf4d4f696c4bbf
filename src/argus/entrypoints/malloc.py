"""glibc malloc settings for the web workers, which copy multi-megabyte published bodies every tick."""

from __future__ import annotations

import ctypes

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
