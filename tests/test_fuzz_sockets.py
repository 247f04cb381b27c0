"""Bounded property-based fuzzing over real sockets (hypothesis).

(a) After a valid handshake, arbitrary bytes or mutated frames from a client end in one of
    the ways RFC 6455 allows: the connection stays open and echoes, or the server sends a
    Close with 1002/1007/1009 (or echoes the code of a valid Close the client sent) followed
    by EOF. Never a hang, never an error logged.
(b) Arbitrary bytes as the HTTP request get a 4xx status (408 and 431 included) or a close;
    never a 101 unless the bytes form a valid upgrade (judged by an independent reading of
    RFC 9112 and RFC 6455 4.2.1: a head ends with an empty line, a bare CR ends no line).

One server per test function (not per example); each example has its own connection and
every wait is bounded. ``HYPOTHESIS_PROFILE=long`` runs many more examples (see
tests/fuzz/README.md); the profile governs the tests here and any test that does not pin
``max_examples`` in its own ``@settings``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import importlib.util
import itertools
import logging
import os
import re
import socket
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gevent
import pytest
from conftest import wait_until
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from protocol_helpers import client_frame, reference_mask
from rawclient import RawClient, ServerFrame, expected_accept

settings.register_profile("long", max_examples=20_000, deadline=None)
settings.register_profile("ci", max_examples=100, deadline=None)
_PROFILE = os.environ.get("HYPOTHESIS_PROFILE")
if _PROFILE:
    settings.load_profile(_PROFILE)
#: 100 by default (a few seconds for both tests); the loaded profile's count otherwise.
EXAMPLES = settings().max_examples if _PROFILE else 100

FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MAX_FRAME = 1024
MAX_MESSAGE = 4096
#: How long any single wait of an example may take before it counts as a hang.
BOUND = 3.0
FAILURE_CODES = {1002, 1007, 1009}
_VALID_CLOSE_CODES = set(range(1000, 1004)) | set(range(1007, 1012)) | {1012, 1013, 1014}


def error_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.levelno >= logging.ERROR]


# ================================================================== (a) frames after the upgrade


@dataclass
class Walk:
    """What a client's byte stream means at the level of framing (lengths only)."""

    #: Bytes that complete the last, unfinished frame (empty at a frame boundary).
    filler: bytes
    #: Whether a fragmented data message is unfinished after the stream and the filler.
    pending: bool
    #: The unmasked payload of the client's first Close frame, None without one.
    close_payload: bytes | None
    #: A frame declares more than the server accepts: it fails there, whatever follows.
    oversized: bool


def walk_frames(data: bytes, max_frame: int = MAX_FRAME) -> Walk:
    """Walk ``data`` frame by frame as RFC 6455 5.2 lays frames out, and work out the bytes
    that bring the stream to a frame boundary (zeros, so the last frame's length stays as
    small as its header allows)."""
    position, pending, close_payload = 0, False, None
    while True:
        rest = data[position:]
        if not rest:
            return Walk(b"", pending, close_payload, False)
        header = bytearray(rest[:14])
        filler = b""
        if len(header) < 2:
            header.append(0x80)  # masked, no payload
            filler += b"\x80"
        first, second = header[0], header[1]
        extended = {126: 2, 127: 8}.get(second & 0x7F, 0)
        header_size = 2 + extended + (4 if second & 0x80 else 0)
        missing = header_size - len(header)
        if missing > 0:
            filler += b"\0" * missing
            header += b"\0" * missing
        length = second & 0x7F
        if extended:
            length = int.from_bytes(header[2 : 2 + extended], "big")
        if length > max_frame:  # refused at the header (1009, or 1002 for bit 63)
            return Walk(filler, pending, close_payload, True)
        available = len(rest) - min(len(rest), header_size)
        if available < length:
            filler += b"\0" * (length - available)
            payload = rest[header_size:] + b"\0" * (length - available)
        else:
            payload = rest[header_size : header_size + length]
        if second & 0x80:
            payload = reference_mask(payload, bytes(header[header_size - 4 : header_size]))
        opcode = first & 0x0F
        if opcode in (CONT, TEXT, BINARY):
            pending = not first & 0x80
        elif opcode == CLOSE and close_payload is None:
            close_payload = payload
        if filler:
            return Walk(filler, pending, close_payload, False)
        position += header_size + length


_masks = st.binary(min_size=4, max_size=4)
#: Mostly nothing, sometimes a little: how many times to break something.
_few = st.sampled_from([0, 0, 0, 0, 1, 1, 2, 3])
#: Now and then: most requests stay valid, so that a 101 is a common outcome too.
_rarely = st.sampled_from([0] * 15 + [1, 2, 3])


@st.composite
def valid_frames(draw: Any) -> bytes:
    """One message (perhaps fragmented, with control frames between), as a client sends it."""
    kind = draw(st.sampled_from(["text", "binary", "ping", "pong"]))
    mask = draw(_masks)
    if kind in ("ping", "pong"):
        opcode = PING if kind == "ping" else PONG
        return client_frame(opcode, draw(st.binary(max_size=125)), mask=mask)
    if kind == "text":
        payload = draw(st.text(max_size=200)).encode()
    else:
        payload = draw(st.binary(max_size=MAX_FRAME + 200))
    size = draw(st.integers(min_value=1, max_value=MAX_FRAME))
    pieces = [payload[index : index + size] for index in range(0, len(payload), size)] or [b""]
    frames = []
    for index, piece in enumerate(pieces):
        opcode = (TEXT if kind == "text" else BINARY) if index == 0 else CONT
        frames.append(client_frame(opcode, piece, fin=index == len(pieces) - 1, mask=mask))
        if draw(st.integers(min_value=0, max_value=5)) == 0:
            frames.append(client_frame(PING, b"between", mask=mask))
    return b"".join(frames)


_broken_frames = st.builds(
    lambda opcode, payload, fin, rsv, mask, declared: client_frame(
        opcode,
        payload,
        fin=fin,
        rsv1=rsv == 1,
        rsv2=rsv == 2,
        rsv3=rsv == 3,
        mask=mask,
        declared_length=declared,
    ),
    st.sampled_from([CONT, TEXT, BINARY, CLOSE, PING, PONG, 3, 7, 0xB, 0xF]),
    st.one_of(
        st.binary(max_size=80),
        st.sampled_from([b"\x03\xe8", b"\x03\xe8bye", b"\x03\xed", b"\x0b\xb8", b"\xf4\x90"]),
        st.sampled_from([b"\xed\xa0\x80", b"\xc3", b"\xff", b"\x00\x01", b"\x0f\xa0"]),
        st.integers(min_value=0, max_value=MAX_FRAME + 2).map(lambda size: b"L" * size),
    ),
    st.booleans(),
    st.sampled_from([0, 0, 0, 1, 2, 3]),
    st.one_of(_masks, _masks, _masks, st.none()),
    st.one_of(
        st.none(),
        st.none(),
        st.integers(min_value=0, max_value=200),
        st.sampled_from([2**62, 2**63, 2**64 - 1, 65535, 65536, MAX_FRAME, MAX_FRAME + 1]),
    ),
)


@st.composite
def client_streams(draw: Any) -> bytes:
    """Arbitrary bytes; or valid messages with now and then a broken frame among them, a few
    bytes flipped, or the stream cut short."""
    if draw(st.integers(min_value=0, max_value=4)) == 0:
        return bytes(draw(st.binary(max_size=300)))
    pieces = draw(st.lists(valid_frames(), min_size=1, max_size=5))
    for _ in range(draw(_few)):
        index = draw(st.integers(min_value=0, max_value=len(pieces)))
        pieces.insert(index, draw(_broken_frames))
    stream = bytearray(b"".join(pieces))
    for _ in range(draw(_few)):
        if not stream:
            break
        index = draw(st.integers(min_value=0, max_value=len(stream) - 1))
        stream[index] ^= draw(st.integers(min_value=1, max_value=255))
    if draw(st.integers(min_value=0, max_value=5)) == 0:
        del stream[draw(st.integers(min_value=0, max_value=len(stream))) :]
    return bytes(stream)


def read_frame_bounded(client: RawClient) -> ServerFrame | None:
    """The server's next frame, or None at EOF; a wait over ``BOUND`` fails the example."""
    with gevent.Timeout(BOUND, AssertionError("the server hung: no frame and no EOF")):
        try:
            return client.read_frame()
        except (ConnectionError, OSError):
            return None


def check_close(frame: ServerFrame, walk: Walk) -> None:
    """A server Close must fail the connection with 1002/1007/1009, or answer the client's
    own valid Close with its code."""
    code = frame.close_code
    if walk.close_payload is not None:
        sent = walk.close_payload
        if sent == b"" and code is None:
            return  # an empty Close answered with an empty Close
        if len(sent) >= 2 and code == struct.unpack("!H", sent[:2])[0]:
            assert code in _VALID_CLOSE_CODES or 3000 <= code <= 4999
            return
    assert code in FAILURE_CODES, (code, frame.close_reason, walk)


def finish_with_close(client: RawClient, frame: ServerFrame, walk: Walk) -> None:
    check_close(frame, walk)
    with gevent.Timeout(BOUND, AssertionError("no EOF after the server's Close")):
        client.expect_eof(BOUND)


@pytest.fixture
def frame_server(serve: Any) -> Any:
    return serve(max_received_frame_size=MAX_FRAME, max_received_message_size=MAX_MESSAGE)


_nonces = itertools.count()


@FUZZ_SETTINGS
@given(stream=client_streams())
def test_property_arbitrary_client_bytes_end_open_or_in_a_proper_close(
    frame_server: Any, caplog: pytest.LogCaptureFixture, stream: bytes
) -> None:
    served = frame_server
    caplog.clear()
    walk = walk_frames(stream)
    nonce = f"probe-{next(_nonces)}".encode()
    client = RawClient(served.port, timeout=BOUND)
    try:
        assert client.handshake().status == 101
        # One write: the stream, what completes its last frame, and a Ping whose Pong
        # proves that the server handled all of it and is still open. (If the server already
        # failed the connection, the write may fail; its Close is still there to read.)
        with contextlib.suppress(OSError):
            client.send_raw(stream + walk.filler + client_frame(PING, nonce))
        while True:
            frame = read_frame_bounded(client)
            assert frame is not None, "EOF without a Close from the server"
            if frame.opcode == CLOSE:
                finish_with_close(client, frame, walk)
                return
            if frame.opcode == PONG and frame.payload == nonce:
                break
        # Still open: every frame was valid, so no Close was in it and no frame was too big.
        assert walk.close_payload is None and not walk.oversized, walk
        probe = b"echo " + nonce
        if walk.pending:  # finish the client's unfinished message first
            client.send_raw(client_frame(CONT, b"", fin=True))
        client.send_raw(client_frame(TEXT, probe))
        while True:
            frame = read_frame_bounded(client)
            assert frame is not None, "EOF without a Close from the server"
            if frame.opcode == CLOSE:
                # Only finishing an unfinished text message can fail here (its UTF-8 may be
                # cut in the middle of a character).
                assert walk.pending and frame.close_code == 1007, frame
                finish_with_close(client, frame, walk)
                return
            if frame.opcode == TEXT and frame.payload == probe:
                break
        client.send_close(1000)
        while (frame := read_frame_bounded(client)) is not None and frame.opcode != CLOSE:
            pass
        assert frame is not None and frame.close_code == 1000
        client.expect_eof(BOUND)
    finally:
        client.close()
        wait_until(lambda: not served.ws.connections, timeout=BOUND, what="the connection to end")
        assert error_records(caplog) == [], caplog.text


# ================================================================== (b) bytes as the request


def not_found_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Every plain HTTP request is a 404, so any answer but a 101 is a 4xx."""
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "9")])
    return [b"not found"]


_HEADER_LINE = re.compile(r"^[\x21-\x39\x3b-\x7e]*:")
_VERSION = re.compile(r"HTTP/([0-9]{1,9})(?:\.([0-9]{1,9}))?")


def _has_token(values: list[str], token: str) -> bool:
    return any(part.strip(" \t").lower() == token for value in values for part in value.split(","))


def _key_valid(key: str) -> bool:
    if len(key) != 24:
        return False
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except (binascii.Error, ValueError):
        return False


def valid_upgrade(data: bytes) -> str | None:
    """The Sec-WebSocket-Key of ``data`` if its head is a valid RFC 6455 opening handshake
    (written from RFC 6455 4.2.1 and RFC 9112, as an HTTP/1.1 parser reads a head), else None.
    """
    text = data.decode("latin-1")
    lines = text.split("\n")
    if len(lines) < 2:
        return None
    words = lines[0].rstrip("\r").split()
    if len(words) != 3 or words[0] != "GET":
        return None
    version = _VERSION.fullmatch(words[2])
    if not version or (int(version.group(1)), int(version.group(2) or 0)) < (1, 1):
        return None
    headers: list[list[str]] = []
    for raw in lines[1:]:
        line = raw.rstrip("\r")
        if line == "":
            break
        if line[0] in " \t" and headers:  # obsolete line folding
            headers[-1][1] += " " + line.strip(" \t")
        elif _HEADER_LINE.match(line):
            name, value = line.split(":", 1)
            headers.append([name.lower(), value.strip(" \t")])
        else:
            break  # the rest is a body to an HTTP parser
    else:
        return None  # no end of the head

    def values(name: str) -> list[str]:
        return [value for key, value in headers if key == name]

    if not (values("host") or [""])[0]:
        return None
    if not _has_token(values("upgrade"), "websocket"):
        return None
    if not _has_token(values("connection"), "upgrade"):
        return None
    key = ", ".join(values("sec-websocket-key"))
    ws_version = ", ".join(values("sec-websocket-version"))
    if not _key_valid(key) or not re.fullmatch("[0-9]+", ws_version):
        return None
    if (ws_version.lstrip("0") or "0") not in ("8", "13"):
        return None
    return key


_BASE_HEADERS = [
    ("Host", "127.0.0.1"),
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ("Sec-WebSocket-Version", "13"),
]
_latin1 = st.text(alphabet=st.characters(max_codepoint=255), max_size=30)


@st.composite
def requests(draw: Any) -> bytes:
    """Arbitrary bytes; or an upgrade request with, now and then, a part changed, a header
    dropped, repeated or added, bytes flipped or the request cut short."""
    if draw(st.integers(min_value=0, max_value=4)) == 0:
        return bytes(draw(st.binary(max_size=400)))
    method, target, version = "GET", "/chat?room=1", "HTTP/1.1"
    if draw(_rarely):
        method = draw(st.sampled_from(["get", "POST", "HEAD", "", "G\x00T", "GET GET"]))
    if draw(_rarely):
        target = draw(st.sampled_from(["*", "http://a/b", "", "/a b", "/%zz"]) | _latin1)
    if draw(_rarely):
        version = draw(st.sampled_from(["HTTP/1.0", "HTTP/2.0", "HTTP/1", "HTTP/1.10", ""]))
    headers = list(_BASE_HEADERS)
    for _ in range(draw(_rarely)):
        action = draw(st.sampled_from(["drop", "duplicate", "change", "add"]))
        if action == "add" or not headers:
            name = draw(st.sampled_from([name for name, _ in _BASE_HEADERS]) | _latin1)
            headers.append((name, draw(_latin1)))
            continue
        index = draw(st.integers(min_value=0, max_value=len(headers) - 1))
        name, value = headers[index]
        if action == "drop":
            del headers[index]
        elif action == "duplicate":
            headers.insert(index, (name, draw(st.sampled_from([value, "", "13", "websocket"]))))
        else:
            new_value = draw(
                st.sampled_from(["", "8", "013", "12", "upgrade, keep-alive", "AAAA", " x "])
                | _latin1
            )
            headers[index] = (name, new_value)
    separator = "\r\n" if draw(_rarely) < 2 else draw(st.sampled_from(["\n", "\r"]))
    lines = [f"{method} {target} {version}"] + [f"{name}: {value}" for name, value in headers]
    request = bytearray((separator.join(lines) + separator + separator).encode("latin-1"))
    for _ in range(draw(_rarely)):
        index = draw(st.integers(min_value=0, max_value=len(request) - 1))
        request[index] ^= draw(st.integers(min_value=1, max_value=255))
    if draw(st.integers(min_value=0, max_value=5)) == 0:
        del request[draw(st.integers(min_value=0, max_value=len(request))) :]
    return bytes(request)


def responses(data: bytes) -> list[tuple[int, dict[str, str]]]:
    """The status and headers of each HTTP response in ``data`` (stopping after a 101)."""
    found = []
    while data:
        assert data.startswith(b"HTTP/1."), data[:100]
        head, separator, data = data.partition(b"\r\n\r\n")
        assert separator, f"a response head without its end: {head[:100]!r}"
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        found.append((status, headers))
        if status == 101:
            break
        length = int(headers.get("content-length", "0"))
        assert len(data) >= length, "a response body cut short"
        data = data[length:]
    return found


@pytest.fixture
def http_server(serve: Any) -> Any:
    return serve(app=not_found_app, handshake_timeout=2000)


@FUZZ_SETTINGS
@given(request=requests())
# Found by this test: a bare CR ends a header line for pywsgi's parser (RFC 9112 2.2 forbids
# it), so "Upgrade" hides in another header's value; also in test_abuse.py.
@example(
    request=b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nX-Note: a\rUpgrade: websocket\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
def test_property_arbitrary_bytes_as_the_request_get_4xx_or_a_close(
    http_server: Any, caplog: pytest.LogCaptureFixture, request: bytes
) -> None:
    served = http_server
    caplog.clear()
    client = RawClient(served.port, timeout=BOUND)
    try:
        try:
            client.send_raw(request)
            # End of input: the server has all there is, so it must answer now, not wait.
            client.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # already answered and closed
        received = b""
        with gevent.Timeout(BOUND, AssertionError("the server hung: no answer and no EOF")):
            while True:
                try:
                    chunk = client.sock.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                received += chunk
        key = valid_upgrade(request)
        for status, headers in responses(received):
            if status == 101:
                assert key is not None, f"101 for an invalid upgrade: {request!r}"
                assert headers.get("sec-websocket-accept") == expected_accept(key)
            else:
                assert 400 <= status <= 499, (status, request)
    finally:
        client.close()
        wait_until(lambda: not served.ws.connections, timeout=BOUND, what="the connection to end")
        assert error_records(caplog) == [], caplog.text


# ================================================================== the atheris targets


@functools.cache
def fuzz_target(name: str) -> Any:
    """The module of ``tests/fuzz/<name>.py`` (imported, not run: no instrumentation)."""
    path = Path(__file__).parent / "fuzz" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"geventws_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["fuzz_protocol", "fuzz_handshake"])
@settings(max_examples=3 * EXAMPLES, deadline=None)
@given(data=st.binary(max_size=2000))
def test_property_fuzz_targets_hold_on_arbitrary_input(name: str, data: bytes) -> None:
    """The coverage-guided targets stay runnable (see tests/fuzz/README.md): their seeds and
    arbitrary inputs pass their checks."""
    target = fuzz_target(name)
    for seed in target.seeds():
        target.test_one_input(seed)
    target.test_one_input(data)
    # The seeds with a byte changed: closer to valid input than noise alone.
    for seed in target.seeds()[:2]:
        if data:
            position = data[0] % len(seed)
            target.test_one_input(seed[:position] + data[1:] + seed[position + 1 :])
