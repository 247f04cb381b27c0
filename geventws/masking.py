"""XOR masking of frame payloads (RFC 6455 5.3), without a byte-at-a-time loop.

:func:`apply_mask` is the C accelerator ``geventws._speedups`` when it was built (8 bytes at a
time), else :func:`python_apply_mask`: the payload and the repeated key read as two big
integers and XORed in one operation, which CPython does word by word. Both give the same bytes.
:data:`PayloadBuffer` receives a big payload that comes in many reads into the memory of the
message itself (in C, the bytes object that is handed out, unmasked in place while each read
is still in the cache); :class:`PythonPayloadBuffer` is the reference.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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


class PythonPayloadBuffer:
    """A masked payload of ``length`` bytes, filled read by read and unmasked as it comes.

    :meth:`view` is the writable part not yet filled (for a socket's ``recv_into``), and
    :meth:`advance` unmasks what was just written there; :meth:`write` copies and unmasks in
    one step; :meth:`take` returns the whole payload once complete, once. The C
    ``PayloadBuffer`` does the same without the final copy.
    """

    __slots__ = ("_data", "_filled", "_mask", "_taken")

    def __init__(self, length: int, mask: bytes) -> None:
        if len(mask) != 4 or length < 0:
            raise ValueError(
                f"a 4-byte mask and a length of at least 0 are needed, got {len(mask)} and {length}"
            )
        self._data = bytearray(length)
        self._filled = 0
        self._mask = bytes(mask)
        self._taken = False

    @property
    def remaining(self) -> int:
        """How many bytes are still to come (0 once taken)."""
        return 0 if self._taken else len(self._data) - self._filled

    def _check(self) -> None:
        if self._taken:
            raise ValueError("the payload was taken already")

    def view(self) -> memoryview:
        """The part not yet filled, writable; release it before :meth:`take`."""
        self._check()
        return memoryview(self._data)[self._filled :]

    def advance(self, count: int) -> int:
        """Unmask the next ``count`` bytes, just written through :meth:`view`; return how
        many are still to come."""
        self._check()
        start, remaining = self._filled, len(self._data) - self._filled
        if not 0 <= count <= remaining:
            raise ValueError(f"advance({count}): {remaining} bytes are still to come")
        end = start + count
        with memoryview(self._data) as whole:
            self._data[start:end] = python_apply_mask(whole[start:end], self._mask, start)
        self._filled = end
        return remaining - count

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Copy and unmask as much of ``data`` as the payload still needs; return how many
        bytes were taken."""
        self._check()
        start = self._filled
        count = min(len(data), len(self._data) - start)
        with memoryview(data) as source:
            self._data[start : start + count] = python_apply_mask(source[:count], self._mask, start)
        self._filled = start + count
        return count

    def take(self) -> bytes:
        """The whole unmasked payload: once, when complete (``ValueError`` before)."""
        self._check()
        if self._filled < len(self._data):
            raise ValueError(f"take(): {self._filled} of {len(self._data)} bytes have come")
        self._taken = True
        payload = bytes(self._data)
        self._data = bytearray()
        return payload


#: The C masker, or None where it did not build.
accelerated_apply_mask: Callable[..., bytes] | None = accelerated("apply_mask")
apply_mask: Callable[..., bytes] = accelerated_apply_mask or python_apply_mask
#: The C payload buffer, or None where it did not build.
AcceleratedPayloadBuffer: Any = accelerated("PayloadBuffer")
#: What a big masked payload is received into.
PayloadBuffer: Any = AcceleratedPayloadBuffer or PythonPayloadBuffer

_release_spare_payloads: Callable[[], None] | None = accelerated("release_spare_payloads")
#: The spent payloads the C payload buffer keeps for reuse (a list, oldest first; empty
#: without the accelerator or where it does not reuse them).
spare_payloads: Callable[[], list[bytes]] = accelerated("spare_payloads") or list


def release_spare_payloads() -> None:
    """Let go of the spent payloads the C :data:`PayloadBuffer` keeps for reuse.

    The C buffer keeps every payload it made (at most the last 16, 16 MiB in all) and receives
    the next payload of the same size into one of them once the application holds it no more,
    instead of into new memory. This frees those the application does not hold; it does
    nothing without the accelerator."""
    if _release_spare_payloads is not None:
        _release_spare_payloads()
