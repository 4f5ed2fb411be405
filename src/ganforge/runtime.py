"""Process-level performance settings that the ``ganforge`` command applies on start.

CPU tensors of a few MiB and more are allocated by glibc's ``malloc`` with ``mmap`` and
handed back to the kernel with ``munmap`` when freed. A network that allocates a fresh
activation for every layer then pays a page fault per 4 KiB page on every forward pass
(the kernel zeroes each page on first touch), which on a small CPU costs as much as a
third of Inception-v3's time. :func:`tune_allocator` tells glibc to serve large blocks from
its heap and keep freed memory for reuse instead; measured effect in ``benchmarks/README.md``.

It changes the whole process, so the library never calls it on its own: the CLI does
(opt out with ``GANFORGE_MALLOC_TUNING=0``), and library users may call it themselves.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

# mallopt() parameter numbers from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3

_applied = False


def tune_allocator(mmap_threshold: int = 1 << 30, top_pad: int = 256 << 20) -> bool:
    """Keep large freed CPU blocks in the heap for reuse (glibc only); True if applied.

    ``mmap_threshold``: blocks below this come from the heap rather than fresh ``mmap``s;
    the trim threshold is raised to match so freed memory is not returned on every free.
    Harmless no-op (False) on other platforms or C libraries, or with
    ``GANFORGE_MALLOC_TUNING=0``.
    """
    global _applied
    if _applied:
        return True
    if os.environ.get("GANFORGE_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and friends have no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = (
        mallopt(_M_MMAP_THRESHOLD, mmap_threshold) == 1
        and mallopt(_M_TRIM_THRESHOLD, 2 * mmap_threshold) == 1
        and mallopt(_M_TOP_PAD, top_pad) == 1
    )
    _applied = ok
    return ok
