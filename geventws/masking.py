"""XOR masking of frame payloads (RFC 6455 5.3), without a byte-at-a-time loop.

The payload and the repeated key are read as two big integers and XORed in one operation, which
CPython does word by word in C; that keeps pure Python within a small factor of a C masker.
"""

from __future__ import annotations


def apply_mask(data: bytes | bytearray | memoryview, mask: bytes, offset: int = 0) -> bytes:
    """Return ``data`` XORed with the 4-byte ``mask``, as if ``data`` started ``offset`` bytes
    into the masked payload (so a payload can be unmasked piece by piece as it arrives).

    Masking is its own inverse: ``apply_mask(apply_mask(d, m), m) == d``.
    """
    size = len(data)
    if size == 0:
        return b""
    if len(mask) != 4:
        raise ValueError(f"a mask is 4 bytes, got {len(mask)}: {mask!r}")
    shift = offset & 3
    if shift:
        mask = mask[shift:] + mask[:shift]
    key = (mask * ((size >> 2) + 1))[:size]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(size, "little")
