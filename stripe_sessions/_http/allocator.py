"""One allocation, once per process, that makes glibc serve asyncio's read buffers from the heap."""

from __future__ import annotations

from typing import Final

__all__ = ["raise_malloc_mmap_threshold"]

#: Larger than asyncio's read size (``sock.recv(256 KiB)`` per read of a socket).
_READ_BUFFER_PLUS: Final = 256 * 1024 + 64 * 1024
_allocator_ready = False


def raise_malloc_mmap_threshold() -> None:
    """Make glibc serve asyncio's 256 KiB read buffers from the heap, once per process.

    asyncio's selector transport reads each socket with ``sock.recv(262144)`` and then
    shrinks the bytes to what arrived. Above its mmap threshold (128 KiB at start)
    glibc maps such a block with ``mmap`` and the shrink is an ``mremap``, so every
    answer costs an mmap, an mremap and an munmap, with their page faults: measured
    with ``strace -c``, one of each per request in a batch, and about 20% more client
    CPU. glibc raises the threshold (its documented "dynamic mmap threshold") when a
    mapped block larger than it is freed, which is what this one allocation does; after
    that the reads come from the heap. Elsewhere it is one short-lived allocation.
    """
    global _allocator_ready  # noqa: PLW0603 - once per process
    if not _allocator_ready:
        _allocator_ready = True
        block = bytes(_READ_BUFFER_PLUS)
        del block
