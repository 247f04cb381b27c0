"""XOR masking of frame payloads (RFC 6455 5.3), without a byte-at-a-time loop.

:func:`apply_mask` is the C accelerator ``geventws._speedups`` when it was built (8 bytes at a
time), else :func:`python_apply_mask`: the payload and the repeated key read as two big
integers and XORed in one operation, which CPython does word by word. Both give the same bytes.
:func:`unmask_pieces` does the same for a payload that arrived in several reads, joining the
pieces as it unmasks them (in one pass in C).
"""

from __future__ import annotations

from collections.abc import Callable

from .accelerator import accelerated


def python_apply_mask(data: bytes | bytearray | memoryview, mask: bytes, offset: int = 0) -> bytes:
    """Return ``data`` XORed with the 4-byte ``mask``, as if ``data`` started ``offset`` bytes
    into the masked payload (so a payload can be unmasked piece by piece as it arrives).

    Masking is its own inverse: ``apply_mask(apply_mask(d, m), m) == d``.
    """
    if len(mask) != 4:
        raise ValueError(f"a mask is 4 bytes, got {len(mask)}: {mask!r}")
    size = len(data)
    if size == 0:
        return b""
    shift = offset & 3
    if shift:
        mask = mask[shift:] + mask[:shift]
    key = (mask * ((size >> 2) + 1))[:size]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(size, "little")


def python_unmask_pieces(
    pieces: list[bytes | bytearray | memoryview], length: int, mask: bytes
) -> bytes:
    """Return the first ``length`` bytes of the concatenated ``pieces``, XORed with the 4-byte
    ``mask`` from its first byte (a payload that arrived in several reads).

    ``ValueError`` if the pieces hold fewer than ``length`` bytes.
    """
    if len(mask) != 4 or length < 0:
        raise ValueError(
            f"a 4-byte mask and a length of at least 0 are needed, got {len(mask)} and {length}"
        )
    joined = b"".join(pieces)
    if len(joined) < length:
        raise ValueError(f"the pieces hold {len(joined)} bytes, {length} are wanted")
    return python_apply_mask(memoryview(joined)[:length], mask)


#: The C masker, or None where it did not build.
accelerated_apply_mask: Callable[..., bytes] | None = accelerated("apply_mask")
apply_mask: Callable[..., bytes] = accelerated_apply_mask or python_apply_mask
#: The C joiner and unmasker of pieces, or None where it did not build.
accelerated_unmask_pieces: Callable[..., bytes] | None = accelerated("unmask_pieces")
unmask_pieces: Callable[..., bytes] = accelerated_unmask_pieces or python_unmask_pieces
