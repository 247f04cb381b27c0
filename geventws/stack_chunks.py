"""Greenlets' Python data stacks, kept for reuse by the C accelerator.

From Python 3.11 on, the frames of a greenlet's Python code live on a data stack of its own: a
16 KiB chunk the interpreter maps from the kernel when the greenlet first runs Python code and
unmaps when it ends. gevent's servers run every connection in a new greenlet, so by default
every connection pays a ``mmap``, a ``munmap`` and the page faults of touching fresh memory.
When this module is imported in the main interpreter (``import geventws`` does it), the C
accelerator puts a thin layer over the interpreter's arena allocator that keeps up to 64 freed
chunks of exactly that size (1 MiB in all) and hands them to the next greenlets; every other
request goes to the allocator it found, unchanged. It is process-wide (it serves every greenlet
and thread, not only geventws's) and is not put in place on Python 3.10 (no data stacks), on
free-threaded builds, on Python 3.14 and later (not checked there yet), or without the
accelerator.
"""

from __future__ import annotations

from collections.abc import Callable

from .accelerator import accelerated

_keep_stack_chunks: Callable[[], bool] | None = accelerated("keep_stack_chunks")
_spare_stack_chunks: Callable[[], int] | None = accelerated("spare_stack_chunks")
_release_spare_stack_chunks: Callable[[], None] | None = accelerated("release_spare_stack_chunks")

#: Whether freed stack chunks are kept for reuse in this process.
KEEPING_STACK_CHUNKS: bool = _keep_stack_chunks() if _keep_stack_chunks is not None else False


def spare_stack_chunks() -> int:
    """Return how many freed stack chunks are kept for reuse now (0 to 64), or -1 where none
    are kept (see the module's documentation)."""
    if _spare_stack_chunks is None:
        return -1
    return _spare_stack_chunks()


def release_spare_stack_chunks() -> None:
    """Give the kept stack chunks back to the system now; later greenlets keep filling the
    spares again. Does nothing where none are kept."""
    if _release_spare_stack_chunks is not None:
        _release_spare_stack_chunks()
