"""A byte-level WebSocket client for tests, written independently of geventws's own code.

It runs on gevent sockets in the test's greenlet, so the server in the same process keeps
serving while the client waits. Every wait is bounded.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import struct
from dataclasses import dataclass

import gevent
import gevent.socket

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
DEFAULT_TIMEOUT = 5.0


@dataclass
class ServerFrame:
    """A frame as the server sent it."""

    fin: bool
    rsv: int
    opcode: int
    masked: bool
    payload: bytes

    @property
    def close_code(self) -> int | None:
        """The status code of a Close frame, None if it carried none."""
        return struct.unpack("!H", self.payload[:2])[0] if len(self.payload) >= 2 else None

    @property
    def close_reason(self) -> str:
        """The reason text of a Close frame."""
        return self.payload[2:].decode("utf-8")


def client_frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = None,
    masked: bool = True,
) -> bytes:
    """Build a client frame byte by byte (masked unless ``masked=False``)."""
    first = (0x80 if fin else 0) | rsv | opcode
    size = len(payload)
    mask_bit = 0x80 if masked else 0
    if size < 126:
        header = bytes([first, mask_bit | size])
    elif size < 65536:
        header = bytes([first, mask_bit | 126]) + struct.pack("!H", size)
    else:
        header = bytes([first, mask_bit | 127]) + struct.pack("!Q", size)
    if not masked:
        return header + payload
    key = mask if mask is not None else os.urandom(4)
    body = bytes(byte ^ key[index % 4] for index, byte in enumerate(payload))
    return header + key + body


def expected_accept(key: str) -> str:
    """Sec-WebSocket-Accept for ``key``, computed as RFC 6455 4.2.2 says."""
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


@dataclass
class HTTPResponse:
    """A parsed HTTP response head."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    raw: bytes

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def all(self, name: str) -> list[str]:
        """Every value of header ``name``."""
        return [value for key, value in self.headers if key.lower() == name.lower()]


class RawClient:
    """One TCP connection speaking raw WebSocket bytes to a server on 127.0.0.1."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = DEFAULT_TIMEOUT):
        self.sock = gevent.socket.create_connection((host, port), timeout=timeout)
        self.buffer = b""
        self.key = base64.b64encode(os.urandom(16)).decode()

    def close(self) -> None:
        """Close the TCP connection."""
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def send_raw(self, data: bytes) -> None:
        """Write ``data`` as is."""
        self.sock.sendall(data)

    def request_bytes(
        self,
        path: str = "/",
        headers: dict[str, str] | None = None,
        *,
        omit: tuple[str, ...] = (),
        method: str = "GET",
        version: str = "HTTP/1.1",
    ) -> bytes:
        """The bytes of an upgrade request; ``headers`` add or replace, ``omit`` removes."""
        base = {
            "Host": "127.0.0.1",
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": self.key,
            "Sec-WebSocket-Version": "13",
        }
        base.update(headers or {})
        lines = [f"{method} {path} {version}"]
        lines += [f"{name}: {value}" for name, value in base.items() if name not in omit]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def read_response(self) -> HTTPResponse:
        """Read one HTTP response head."""
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed before a full response: {self.buffer!r}")
            self.buffer += chunk
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        _, status, reason = [*lines[0].split(" ", 2), ""][:3]
        headers = [tuple(line.split(": ", 1)) for line in lines[1:]]
        return HTTPResponse(int(status), reason, headers, head + b"\r\n\r\n")  # type: ignore[arg-type]

    def handshake(
        self, path: str = "/", headers: dict[str, str] | None = None, extra: bytes = b""
    ) -> HTTPResponse:
        """Send an upgrade request (plus ``extra`` bytes in the same write) and read the
        answer; a 101 is checked for the right accept key."""
        self.send_raw(self.request_bytes(path, headers) + extra)
        response = self.read_response()
        if response.status == 101:
            assert response.header("Sec-WebSocket-Accept") == expected_accept(self.key)
        return response

    def send_frame(self, opcode: int, payload: bytes = b"", **kwargs: object) -> None:
        """Send one masked frame."""
        self.send_raw(client_frame(opcode, payload, **kwargs))  # type: ignore[arg-type]

    def send_text(self, text: str) -> None:
        """Send a text message in one frame."""
        self.send_frame(0x1, text.encode("utf-8"))

    def send_binary(self, data: bytes) -> None:
        """Send a binary message in one frame."""
        self.send_frame(0x2, data)

    def send_close(self, code: int | None = 1000, reason: str = "") -> None:
        """Send a Close frame."""
        payload = b"" if code is None else struct.pack("!H", code) + reason.encode("utf-8")
        self.send_frame(0x8, payload)

    def _read_exact(self, size: int) -> bytes:
        while len(self.buffer) < size:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"EOF with {len(self.buffer)} of {size} bytes")
            self.buffer += chunk
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def read_frame(self) -> ServerFrame:
        """Read one frame from the server."""
        first, second = self._read_exact(2)
        size = second & 0x7F
        if size == 126:
            size = struct.unpack("!H", self._read_exact(2))[0]
        elif size == 127:
            size = struct.unpack("!Q", self._read_exact(8))[0]
        masked = bool(second & 0x80)
        key = self._read_exact(4) if masked else b""
        payload = self._read_exact(size)
        if masked:
            payload = bytes(byte ^ key[index % 4] for index, byte in enumerate(payload))
        return ServerFrame(bool(first & 0x80), first & 0x70, first & 0x0F, masked, payload)

    def read_message(self) -> str | bytes:
        """Read a whole data message (skipping control frames other than Close)."""
        parts: list[bytes] = []
        opcode = None
        while True:
            frame = self.read_frame()
            if frame.opcode == 0x8:
                raise ConnectionError(f"Close {frame.close_code} {frame.close_reason!r}")
            if frame.opcode >= 0x8:
                continue
            if opcode is None:
                opcode = frame.opcode
            parts.append(frame.payload)
            if frame.fin:
                data = b"".join(parts)
                return data.decode("utf-8") if opcode == 0x1 else data

    def read_until_close(self) -> ServerFrame:
        """Skip frames until the server's Close and return it."""
        while True:
            frame = self.read_frame()
            if frame.opcode == 0x8:
                return frame

    def expect_eof(self, timeout: float = DEFAULT_TIMEOUT) -> bytes:
        """Wait for the server to close TCP; return any bytes that came before EOF."""
        received = self.buffer
        self.buffer = b""
        with gevent.Timeout(timeout, AssertionError("no EOF from the server")):
            while True:
                try:
                    chunk = self.sock.recv(65536)
                except ConnectionResetError:
                    return received
                if not chunk:
                    return received
                received += chunk

    def close_handshake(self, code: int = 1000) -> None:
        """Close from the client: send Close ``code``, expect the server's Close with the same
        code, then the server's FIN with nothing before it."""
        self.send_close(code)
        assert self.read_until_close().close_code == code
        assert self.expect_eof() == b""

    def shutdown_write(self) -> None:
        """Half-close: send FIN."""
        self.sock.shutdown(socket.SHUT_WR)
