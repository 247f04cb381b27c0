"""The interface a negotiated extension (such as permessage-deflate, RFC 7692) implements.

An extension claims RSV bits. The protocol refuses a frame that sets a bit no extension claims;
a frame that sets claimed bits goes through the extension's :meth:`Extension.decode_frame`
before its payload is validated and assembled, and outgoing messages go through
:meth:`Extension.encode_message` before they are framed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

RSV1 = 0x40
RSV2 = 0x20
RSV3 = 0x10


class Extension(ABC):
    """One negotiated extension, for the lifetime of one connection."""

    #: The name as it appears in ``Sec-WebSocket-Extensions``.
    name: str = ""
    #: The RSV bits (``RSV1 | RSV2 | RSV3`` subset) this extension may set.
    rsv_mask: int = 0

    @abstractmethod
    def decode_frame(self, rsv: int, payload: bytes, fin: bool, max_size: int) -> bytes:
        """Return the payload of a received data frame whose RSV bits are ``rsv``.

        ``fin`` tells that the frame ends its message; ``max_size`` is how many decoded bytes
        the message may still grow by: beyond it, raise
        :class:`~geventws.errors.ProtocolError` with 1009.
        """

    @abstractmethod
    def encode_message(self, opcode: int, payload: bytes) -> tuple[int, bytes]:
        """Return the RSV bits to set on the first frame of an outgoing message, and its
        encoded payload."""
