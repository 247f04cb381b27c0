"""Bad input and abuse over real sockets: slow, huge, malformed and silent clients.

Every test keeps well-behaved clients connected next to the abusive one and shows that they
still echo afterwards (and the ``serve`` fixture shows that nothing leaked: no connection, no
socket and no greenlet outlives the test).
"""

from __future__ import annotations

import fcntl
import logging
import random
import ssl
import struct
import termios
import time
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import pytest
from conftest import wait_until
from gevent.event import Event
from greenlet import GreenletExit
from rawclient import RawClient, client_frame
from recorder import Recorder, nothing_arrives, open_client
from tls_helpers import tls_contexts, tls_raw_client

from geventws import ConnectionClosedError

TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA

#: Slack for timing assertions: the loop, the log handlers and a loaded CI machine.
SLACK = 0.6


# ------------------------------------------------------------------ helpers


@pytest.fixture
def connect_others(serve: Any) -> Iterator[Callable[..., list[RawClient]]]:
    """``connect_others(served)``: well-behaved clients, connected and upgraded before the
    abuse starts (their sockets are closed after the test even when it fails, before the
    ``serve`` fixture counts sockets)."""
    opened: list[RawClient] = []

    def connect(served: Any, count: int = 2, tls: Any = None) -> list[RawClient]:
        clients = []
        for _ in range(count):
            if tls is None:
                client = RawClient(served.port)
            else:
                client = tls_raw_client(served.port, tls, strict_eof=False)
            opened.append(client)
            assert client.handshake().status == 101
            clients.append(client)
        return clients

    yield connect
    for client in opened:
        client.close()


def assert_echo(clients: list[RawClient], label: str = "") -> None:
    """Each client gets its own message echoed, text and binary."""
    for index, client in enumerate(clients):
        text = f"still here {label} {index}"
        client.send_text(text)
        assert client.read_message() == text
        data = bytes([index]) * 300
        client.send_binary(data)
        assert client.read_message() == data


def close_all(clients: list[RawClient]) -> None:
    """End the well-behaved clients with a clean closing handshake."""
    for client in clients:
        client.send_close(1000)
        assert client.read_until_close().close_code == 1000
        client.expect_eof()
        client.close()


def read_to_eof(sock: Any, timeout: float) -> bytes:
    """Everything the server sends until it closes (a reset counts as the end too)."""
    received = b""
    with gevent.Timeout(timeout, AssertionError(f"no EOF within {timeout} s: {received!r:.200}")):
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                return received
            if not chunk:
                return received
            received += chunk


def status_of(response: bytes) -> int | None:
    """The status code of the HTTP response at the start of ``response``, None if none."""
    if not response.startswith(b"HTTP/"):
        return None
    return int(response.split(b" ", 2)[1])


def trickle(client: RawClient, data: bytes, interval: float, limit: float) -> tuple[bytes, float]:
    """Send ``data`` one byte per ``interval`` s until the server answers or hangs up.

    Between bytes, a read bounded by ``interval`` looks for the server's answer. Returns what
    the server sent before EOF and the seconds from the first byte to the end.
    """
    sock = client.sock
    start = time.monotonic()
    try:
        for byte in data:
            assert time.monotonic() - start < limit, f"not cut off within {limit} s"
            try:
                sock.sendall(bytes([byte]))
            except OSError:  # the server closed (RST after our byte reached a closed socket)
                break
            sock.settimeout(interval)
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue  # nothing yet: next byte
            except ConnectionResetError:
                break
            sock.settimeout(5.0)
            if not chunk:
                break
            return chunk + read_to_eof(sock, 5.0), time.monotonic() - start
        else:
            raise AssertionError("the whole request went through without being cut off")
    finally:
        sock.settimeout(5.0)
    return read_to_eof(sock, 5.0), time.monotonic() - start


def fragments(count: int, payload: bytes = b"x", opcode: int = BINARY) -> list[bytes]:
    """The frames of one message in ``count`` fragments of ``payload`` each (FIN on the last)."""
    frames = [client_frame(opcode, payload, fin=count == 1)]
    frames += [client_frame(CONT, payload, fin=False) for _ in range(count - 2)]
    if count > 1:
        frames.append(client_frame(CONT, payload, fin=True))
    return frames


def wait_for_pong(client: RawClient, payload: bytes) -> None:
    """Ping and wait for the answer: the server has handled everything sent before."""
    client.send_frame(PING, payload)
    while True:
        frame = client.read_frame()
        assert frame.opcode != CLOSE, f"Close {frame.close_code} {frame.close_reason!r}"
        if frame.opcode == PONG and frame.payload == payload:
            return


def unread_bytes(sock: Any) -> int:
    """Bytes waiting in ``sock``'s receive queue (FIONREAD)."""
    return int(struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0" * 4))[0])


def unsent_bytes(sock: Any) -> int:
    """Bytes in ``sock``'s send queue, not yet acknowledged by the peer (SIOCOUTQ)."""
    return int(struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0])


def client_hello() -> bytes:
    """The first flight of a real TLS client: its ClientHello record(s)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    hello = outgoing.read()
    assert hello[:1] == b"\x16"  # a TLS handshake record
    return hello


def server_opcodes(data: bytes) -> set[int]:
    """The opcodes of the whole (unmasked) server frames at the start of ``data``."""
    opcodes, position = set(), 0
    while len(data) - position >= 2:
        size, header = data[position + 1] & 0x7F, 2
        if size == 126:
            size, header = int.from_bytes(data[position + 2 : position + 4], "big"), 4
        elif size == 127:
            size, header = int.from_bytes(data[position + 2 : position + 10], "big"), 10
        if len(data) - position < header + size:
            break  # the frame the timed-out send was writing, cut short
        opcodes.add(data[position] & 0x0F)
        position += header + size
    return opcodes


def error_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.levelno >= logging.ERROR]


# ------------------------------------------------------------------ 1. slowloris


@pytest.mark.parametrize("what", ["whole-request", "headers-after-request-line"])
def test_slowloris_handshake_is_cut_off_after_handshake_timeout(serve, connect_others, what):
    served = serve(handshake_timeout=500)
    others = connect_others(served)
    with RawClient(served.port) as slow:
        request = slow.request_bytes(headers={"X-Padding": "p" * 50})
        if what == "headers-after-request-line":
            line_end = request.index(b"\r\n") + 2
            slow.send_raw(request[:line_end])
            request = request[line_end:]
        answer, elapsed = trickle(slow, request, interval=0.1, limit=3.0)
    # Cut off about handshake_timeout after the connection began, long before it finished.
    assert 0.4 <= elapsed <= 0.5 + SLACK, elapsed
    if what == "headers-after-request-line":
        # The request line is in: the head is incomplete, which deserves a 408.
        assert status_of(answer) == 408, answer
    else:
        assert answer == b"" or status_of(answer) == 408, answer
    assert b"101" not in answer
    assert len(served.ws.connections) == 2
    assert_echo(others, "after slowloris")
    close_all(others)


def test_idle_keep_alive_http_connection_is_closed_after_handshake_timeout(serve, connect_others):
    served = serve(handshake_timeout=500)
    others = connect_others(served)
    with RawClient(served.port) as idle:
        idle.send_raw(b"GET /plain HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        response = idle.read_response()
        assert response.status == 200
        assert response.header("Connection") != "close"
        body_length = int(response.header("Content-Length") or 0)
        while len(idle.buffer) < body_length:
            idle.buffer += idle.sock.recv(65536)
        assert idle.buffer[:body_length] == b"plain /plain"
        idle.buffer = idle.buffer[body_length:]
        went_idle = time.monotonic()
        # The connection stays open for a while (keep-alive) ...
        assert nothing_arrives(idle, 0.2)
        assert_echo(others, "while the HTTP connection idles")
        # ... and is closed about handshake_timeout after the response.
        rest = idle.expect_eof(timeout=3.0)
        elapsed = time.monotonic() - went_idle
        assert rest == b"" or status_of(rest) == 408, rest
        assert 0.4 <= elapsed <= 0.5 + SLACK, elapsed
    assert_echo(others, "after the idle HTTP connection")
    close_all(others)


# ------------------------------------------------------------------ 2. huge request heads


def request_of_size(client: RawClient, size: int, shape: str) -> bytes:
    """An upgrade request whose head is exactly ``size`` bytes, padded with headers."""
    base = client.request_bytes()
    missing = size - len(base)
    if shape == "one-huge-header":
        padding = {"X-Huge": "h" * (missing - len("X-Huge: \r\n"))}
    else:
        padding = {}
        index = 0
        while missing > 0:
            name = f"X-Many-{index:03d}"
            value_size = min(300, missing - len(name) - 4)
            if value_size < 1:  # too little left for one more header: widen the previous one
                name, value = padding.popitem()
                missing += len(name) + 4 + len(value)
                value_size = missing - len(name) - 4
            padding[name] = "m" * value_size
            missing -= len(name) + 4 + value_size
            index += 1
    request = client.request_bytes(headers=padding)
    assert len(request) == size, (len(request), size)
    return request


@pytest.mark.parametrize("shape", ["one-huge-header", "many-headers"])
def test_request_head_over_max_request_header_size_gets_431(serve, connect_others, shape):
    limit = 8192
    served = serve(max_request_header_size=limit)
    others = connect_others(served)
    for size in (limit + 1, 3 * limit):
        with RawClient(served.port) as client:
            request = request_of_size(client, size, shape)
            if shape == "many-headers":
                # Fewer than http.client's 100 headers: the size is what counts.
                assert request.count(b"\r\n") - 2 < 90
            client.send_raw(request)
            answer = read_to_eof(client.sock, 3.0)
            assert status_of(answer) == 431, answer[:200]
    assert len([event for event in served.events if event[0] == "request"]) == 2  # the others
    assert_echo(others, "after 431")
    close_all(others)


@pytest.mark.parametrize("shape", ["one-huge-header", "many-headers"])
def test_request_head_of_exactly_max_request_header_size_still_upgrades(
    serve, connect_others, shape
):
    limit = 8192
    served = serve(max_request_header_size=limit)
    others = connect_others(served)
    with RawClient(served.port) as client:
        client.send_raw(request_of_size(client, limit, shape))
        assert client.read_response().status == 101
        assert_echo([client, *others], "after a head at the limit")
        close_all([client, *others])


# ------------------------------------------------------------------ 3. many tiny fragments


def test_ten_thousand_one_byte_fragments_make_one_message(serve, connect_others):
    recorder = Recorder()
    served = serve(on_connect=recorder)
    others = connect_others(served)
    client, _ = open_client(served, recorder)
    with client:
        frames = fragments(10_000, b"\xab")
        client.send_raw(b"".join(frames))
        assert client.read_message() == b"\xab" * 10_000
        text_frames = fragments(10_000, b"t", TEXT)
        # Interleaved with the well-behaved clients' traffic, in pieces of 1,000 frames.
        for start in range(0, 10_000, 1_000):
            client.send_raw(b"".join(text_frames[start : start + 1_000]))
            assert_echo(others[:1], f"during fragments {start}")
        assert client.read_message() == "t" * 10_000
        close_all([client])
    assert_echo(others, "after many fragments")
    close_all(others)


def test_many_fragments_cost_about_their_payload_in_memory(serve, connect_others):
    """The protocol keeps one growing buffer per message, not a list of 10,000 pieces."""
    count = 10_000
    recorder = Recorder()
    served = serve(on_connect=recorder)
    others = connect_others(served)
    client, _ = open_client(served, recorder)
    frames = fragments(count, b"m")
    pending, last = b"".join(frames[:-1]), frames[-1]
    tracemalloc.start()
    try:
        with client:
            wait_for_pong(client, b"before")  # everything up to here is handled
            baseline, _ = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            client.send_raw(pending)
            # The Pong comes once the server has handled all the fragments before the Ping.
            wait_for_pong(client, b"pending")
            current, peak = tracemalloc.get_traced_memory()
            assert recorder.messages == []  # the message is not finished yet
            client.send_raw(last)
            assert client.read_message() == b"m" * count
            close_all([client])
    finally:
        tracemalloc.stop()
    growth, peak_growth = current - baseline, peak - baseline
    # The wire bytes (7 per fragment) arrive in receive chunks of at most 64 KiB, which come
    # and go; what stays is the message buffer (10,000 bytes, plus bytearray headroom). A list
    # of pieces would cost at least a pointer per fragment (8 bytes; 41 with a bytes object of
    # its own): 80 KB or more for 10,000 fragments.
    assert growth <= 4 * count, (growth, peak_growth)
    # At its peak, add the reader's receive chunks (CPython allocates the full 64 KiB for each
    # recv, and the previous chunk may still be alive): a fixed cost, not one per fragment.
    assert peak_growth <= 4 * count + 2 * 65536, (growth, peak_growth)
    assert_echo(others, "after the memory check")
    close_all(others)


def test_fragments_over_max_received_message_size_fail_with_1009_at_once(serve, connect_others):
    limit = 5_000
    recorder = Recorder()
    served = serve(on_connect=recorder, max_received_message_size=limit)
    others = connect_others(served)
    client, _ = open_client(served, recorder)
    with client:
        frames = fragments(10_000, b"z")
        # Exactly the limit is fine: the connection stays open.
        client.send_raw(b"".join(frames[:limit]))
        wait_for_pong(client, b"at the limit")
        # One byte more is not: the Close comes without anything further being sent.
        client.send_raw(frames[limit])
        close = client.read_until_close()
        assert (close.close_code, close.close_reason) == (1009, "Maximum message size exceeded.")
        client.expect_eof()
    wait_until(lambda: recorder.closes, what="the close event")
    assert recorder.closes == [(1009, "Maximum message size exceeded.")]
    assert recorder.messages == []
    assert_echo(others, "after 1009")
    close_all(others)


# ------------------------------------------------------------------ 4. absurd lengths


@pytest.mark.parametrize(
    ("length", "code"),
    [(2**63, 1002), (2**64 - 1, 1002), (2**62, 1009), (2**32, 1009), (65537, 1009)],
    ids=["2^63", "2^64-1", "2^62", "2^32", "max+1"],
)
def test_frame_declaring_an_absurd_length_is_refused_before_any_payload(
    serve, connect_others, length, code
):
    recorder = Recorder()
    served = serve(on_connect=recorder)
    others = connect_others(served)
    client, _ = open_client(served, recorder)
    with client:
        header = bytes([0x80 | BINARY, 0x80 | 127]) + struct.pack("!Q", length) + b"mask"
        started = time.monotonic()
        client.send_raw(header)  # and not one byte of payload
        close = client.read_until_close()
        assert close.close_code == code, close
        client.expect_eof()
        assert time.monotonic() - started < 1.0
    wait_until(lambda: recorder.closes, what="the close event")
    assert recorder.closes[0][0] == code
    assert_echo(others, f"after a {length}-byte frame")
    close_all(others)


# ------------------------------------------------------------------ 5. unmasked frames


@pytest.mark.parametrize(("opcode", "payload"), [(TEXT, b"hello"), (BINARY, b""), (PING, b"p")])
def test_unmasked_frame_fails_the_connection_with_1002(serve, connect_others, opcode, payload):
    recorder = Recorder()
    served = serve(on_connect=recorder)
    others = connect_others(served)
    client, _ = open_client(served, recorder)
    with client:
        client.send_text("masked is fine")
        assert client.read_message() == "masked is fine"
        client.send_raw(client_frame(opcode, payload, masked=False))
        close = client.read_until_close()
        assert close.close_code == 1002
        assert close.close_reason == "Received an unmasked frame from the client."
        client.expect_eof()
    wait_until(lambda: recorder.closes, what="the close event")
    assert recorder.closes == [(1002, "Received an unmasked frame from the client.")]
    assert_echo(others, "after an unmasked frame")
    close_all(others)


# ------------------------------------------------------------------ 6. a peer that never reads


def test_peer_that_never_reads_is_dropped_after_send_timeout(serve, connect_others):
    size, total = 65536, 2000  # 128 MiB tried: far more than any kernel buffers
    wire_size = size + 4 * 4  # four 16 KiB fragments with a 4-byte header each
    recorder = Recorder()
    served = serve(on_connect=recorder, send_timeout=500)
    others = connect_others(served)
    stalled, connection = open_client(served, recorder)
    progress = {"sent": 0, "last": time.monotonic(), "error": None, "failed_at": 0.0}

    def sender() -> None:
        data = b"s" * size
        try:
            for _ in range(total):
                connection.send(data)
                progress["sent"] += 1
                progress["last"] = time.monotonic()
        except ConnectionClosedError as error:
            progress["error"] = error
            progress["failed_at"] = time.monotonic()

    with stalled:
        greenlet = gevent.spawn(sender)
        # The sender only lets others run once a send has to wait: the kernel buffers are full.
        wait_until(lambda: progress["sent"] > 0, what="the first sends")
        in_kernel = unsent_bytes(connection.socket) + unread_bytes(stalled.sock)
        sent_during_stall = progress["sent"]
        assert_echo(others, "while a send is blocked")
        echoed_at = time.monotonic()
        assert not greenlet.dead and connection.state == "open"
        greenlet.join(timeout=3.0)
        assert greenlet.dead
        error = progress["error"]
        assert isinstance(error, ConnectionClosedError), progress
        assert (error.code, error.description) == (1006, "Send timed out: the peer is not reading.")
        # The blocked send never finished: no progress after the stall began, and everything
        # that was "sent" is in the kernel's buffers (there is no queue in user space).
        assert progress["sent"] == sent_during_stall < total
        assert sent_during_stall * wire_size <= in_kernel, (sent_during_stall, in_kernel)
        assert echoed_at < progress["failed_at"]
        stall = progress["failed_at"] - progress["last"]
        assert 0.45 <= stall <= 0.5 + SLACK, stall
        wait_until(lambda: recorder.closes, what="the close event")
        assert recorder.closes == [(1006, "Send timed out: the peer is not reading.")]
        with pytest.raises(ConnectionClosedError):
            connection.send("after")
        # The peer gets what was in the buffers, then EOF: no Close (it would not read it).
        received = read_to_eof(stalled.sock, 5.0)
        assert len(received) >= sent_during_stall * wire_size
        assert server_opcodes(received) <= {BINARY, CONT}
    assert_echo(others, "after the stalled peer was dropped")
    close_all(others)


# ------------------------------------------------------------------ 7. a vanished peer


def test_peer_that_vanishes_without_fin_is_dropped_by_keepalive(serve, connect_others):
    recorder = Recorder()
    served = serve(
        on_connect=recorder, keepalive=True, keepalive_interval=100, keepalive_grace_period=100
    )
    others = connect_others(served)
    gone, connection = open_client(served, recorder)
    with gone:
        started = time.monotonic()
        deadline = started + 3.0
        # The others keep talking (any data keeps a connection alive); the vanished one
        # neither reads nor answers the pings.
        while not recorder.closes:
            assert time.monotonic() < deadline, "the vanished peer was not dropped"
            assert_echo(others, "while the vanished peer is pinged")
        elapsed = time.monotonic() - started
        assert recorder.closes == [(1006, "Peer not responding.")]
        assert 0.15 <= elapsed <= 0.2 + SLACK, elapsed
        assert (connection.close_reason_code, connection.close_description) == (
            1006,
            "Peer not responding.",
        )
        # What it would have read: Pings, then EOF, and no Close.
        received = gone.expect_eof()
        gone.buffer = received
        frames = []
        while gone.buffer:
            frames.append(gone.read_frame())
        assert frames and all(frame.opcode == PING for frame in frames), frames
    assert len(served.ws.connections) == 2
    assert_echo(others, "after the vanished peer was dropped")
    close_all(others)


# ------------------------------------------------------------------ 8. half-open


def test_half_close_without_close_frame_is_a_dropped_connection(serve, connect_others):
    recorder = Recorder()
    served = serve(on_connect=recorder)
    others = connect_others(served)
    client, connection = open_client(served, recorder)
    with client:
        client.send_text("before FIN")
        assert client.read_message() == "before FIN"
        client.shutdown_write()
        assert client.expect_eof() == b""  # the server closes its side too, without a Close
    wait_until(lambda: recorder.closes, what="the close event")
    assert recorder.closes == [(1006, "Connection dropped by remote peer.")]
    assert connection.state == "closed"
    assert connection.socket.fileno() == -1  # closed on the server's side
    assert_echo(others, "after a half-close")
    close_all(others)


# ------------------------------------------------------------------ 9. misbehaving listeners


def test_listener_that_raises_is_logged_and_the_next_message_arrives(serve, connect_others, caplog):
    received: list[str | bytes] = []

    def on_connect(connection: Any) -> None:
        def on_message(message: str | bytes) -> None:
            received.append(message)
            if message == "boom":
                raise RuntimeError("listener bug on boom")
            connection.send(message)

        connection.on("message", on_message)

    served = serve(on_connect=on_connect)
    others = connect_others(served)
    client = RawClient(served.port)
    with client:
        assert client.handshake().status == 101
        client.send_text("boom")
        client.send_text("after boom")
        assert client.read_message() == "after boom"
        assert received[-2:] == ["boom", "after boom"]
        assert_echo([client, *others], "after a listener raised")
        close_all([client])
    failures = [r for r in error_records(caplog) if "listener bug on boom" in str(r.exc_info)]
    assert len(failures) == 1
    assert failures[0].exc_info is not None and failures[0].exc_info[0] is RuntimeError
    assert "Traceback" in caplog.text and "RuntimeError: listener bug on boom" in caplog.text
    close_all(others)


def test_listener_blocked_forever_is_cancelled_close_timeout_after_the_close(
    serve, connect_others, caplog
):
    close_timeout = 0.3
    never = Event()  # nobody sets it
    stuck: dict[str, Any] = {}
    recorder = Recorder()

    def on_connect(connection: Any) -> None:
        recorder(connection)
        if len(recorder.connections) < 3:
            return  # the well-behaved clients

        def on_message(message: str | bytes) -> None:
            if message == "block":
                stuck["blocked"] = True
                try:
                    never.wait()
                except GreenletExit:
                    stuck["cancelled_at"] = time.monotonic()
                    raise

        connection.on("message", on_message)
        connection.on("close", lambda *args: stuck.setdefault("close_at", time.monotonic()))

    served = serve(on_connect=on_connect, close_timeout=close_timeout * 1000)
    others = connect_others(served)
    client, connection = open_client(served, recorder)
    with client:
        client.send_text("block")
        assert client.read_message() == "block"  # the Recorder's echo, before the stuck one
        wait_until(lambda: stuck.get("blocked"), what="the listener to block")
        assert_echo(others, "while a listener is stuck")
        client.send_close(1000)
        sent_close = time.monotonic()
        reply = client.read_until_close()
        replied = time.monotonic() - sent_close
        assert reply.close_code == 1000
        # The reader waited for the stuck listener, but not longer than close_timeout.
        assert close_timeout - 0.05 <= replied <= close_timeout + SLACK, replied
        client.expect_eof()
    closed_at = time.monotonic()
    wait_until(lambda: "close_at" in stuck, what="the close event")
    # The close event waited behind the stuck listener until it was cancelled.
    assert stuck["cancelled_at"] <= stuck["close_at"]
    delay = stuck["close_at"] - closed_at
    assert close_timeout - 0.05 <= delay <= close_timeout + SLACK, delay
    assert recorder.closes[-1][0] == 1000
    assert (connection.close_reason_code, connection.state) == (1000, "closed")
    warnings = [
        r for r in caplog.records if r.levelno == logging.WARNING and "blocked" in r.message
    ]
    assert len(warnings) == 1, caplog.text
    assert_echo(others, "after the stuck listener")
    close_all(others)


# ------------------------------------------------------------------ 10. the wrong protocol


def test_tls_client_hello_on_the_plain_port_gets_400(serve, connect_others):
    served = serve(handshake_timeout=3000)
    others = connect_others(served)
    with RawClient(served.port) as client:
        started = time.monotonic()
        hello = client_hello()
        # Its supported_groups extension (type 0x000a) holds a line feed: pywsgi reads a
        # "request line" at once, without waiting for bytes a TLS client never sends.
        assert b"\n" in hello
        client.send_raw(hello)
        # A TLS client now waits for the ServerHello: it sends nothing more.
        answer = read_to_eof(client.sock, 5.0)
        elapsed = time.monotonic() - started
        assert status_of(answer) == 400, answer[:200]
        assert elapsed < 1.0, elapsed  # at once, not after handshake_timeout
    assert_echo(others, "after a ClientHello")
    close_all(others)


def test_plain_http_to_the_tls_port_fails_the_tls_handshake(serve, connect_others, caplog):
    tls = tls_contexts()
    served = serve(ssl={"ssl_context": tls.server}, handshake_timeout=1000)
    others = connect_others(served, tls=tls)
    with RawClient(served.port) as plain:
        plain.send_raw(plain.request_bytes())
        answer = read_to_eof(plain.sock, 3.0)
        assert b"HTTP/" not in answer  # at most a TLS alert, never an HTTP answer
        assert not answer or answer[:1] == b"\x15", answer[:50]  # an alert record, if any
    assert len(served.ws.connections) == 2
    assert_echo(others, "after plain HTTP on the TLS port")
    close_all(others)
    assert error_records(caplog) == []


def test_silent_client_on_the_tls_port_is_closed_after_handshake_timeout(serve, connect_others):
    tls = tls_contexts()
    served = serve(ssl={"ssl_context": tls.server}, handshake_timeout=500)
    others = connect_others(served, tls=tls)
    with RawClient(served.port) as silent:
        started = time.monotonic()
        answer = read_to_eof(silent.sock, 3.0)  # no ClientHello: no TLS handshake
        elapsed = time.monotonic() - started
        assert b"HTTP/" not in answer
        assert elapsed <= 0.5 + SLACK, elapsed
    assert_echo(others, "after a silent TLS client")
    close_all(others)


# ------------------------------------------------------------------ 11. garbage and silence


@pytest.mark.parametrize("seed", range(6))
def test_random_bytes_instead_of_http_get_400_or_a_close(serve, connect_others, seed):
    served = serve(handshake_timeout=500)
    others = connect_others(served)
    garbage = random.Random(seed).randbytes(2000)
    with RawClient(served.port) as client:
        started = time.monotonic()
        client.send_raw(garbage)
        answer = read_to_eof(client.sock, 3.0)
        elapsed = time.monotonic() - started
        assert answer == b"" or status_of(answer) in (400, 408, 414, 431), answer[:200]
        assert elapsed <= 0.5 + SLACK, elapsed
    assert [event[0] for event in served.events].count("request") == 2  # only the others
    assert_echo(others, "after garbage")
    close_all(others)


@pytest.mark.parametrize(
    "request_line",
    [b"GET / HTTP/1", b"GET / HTTP/1.1.x"],
)
def test_malformed_http_version_gets_400_without_a_traceback(
    serve, connect_others, capsys, request_line
):
    served = serve()
    others = connect_others(served)
    capsys.readouterr()
    with RawClient(served.port) as client:
        client.send_raw(request_line + b"\r\n" + client.request_bytes().split(b"\r\n", 1)[1])
        answer = read_to_eof(client.sock, 3.0)
        assert status_of(answer) == 400, answer[:200]
    # Bad client input is logged as such, in one line; a traceback belongs to server bugs.
    assert "Traceback" not in capsys.readouterr().err
    assert_echo(others, "after a bad HTTP version")
    close_all(others)


UPGRADE_HEAD = (
    b"GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
)


def test_bare_cr_in_a_header_line_does_not_make_a_second_header(serve, connect_others):
    """RFC 9112 2.2: a bare CR makes the element invalid (or reads as a space). It must not
    end the line: that would let ``Upgrade`` hide inside another header's value, past any
    proxy that reads the line as one header."""
    served = serve()
    others = connect_others(served)
    with RawClient(served.port) as client:
        client.send_raw(UPGRADE_HEAD + b"X-Note: a\rUpgrade: websocket\r\n\r\n")
        answer = read_to_eof(client.sock, 3.0)
        assert status_of(answer) == 400, answer[:200]
    assert [event[0] for event in served.events].count("connect") == 2  # only the others
    assert_echo(others, "after a bare CR")
    close_all(others)


def test_request_head_cut_short_by_eof_is_not_upgraded(serve, connect_others):
    """A head that ends in EOF instead of its empty line is incomplete: no 101 for it."""
    served = serve()
    others = connect_others(served)
    with RawClient(served.port) as client:
        client.send_raw(UPGRADE_HEAD + b"Upgrade: websocket\r\n")  # no empty line
        client.shutdown_write()
        answer = read_to_eof(client.sock, 3.0)
        assert answer == b"" or status_of(answer) == 400, answer[:200]
    assert [event[0] for event in served.events].count("connect") == 2  # only the others
    assert_echo(others, "after a head cut short")
    close_all(others)


def test_client_that_sends_nothing_is_closed_after_handshake_timeout(serve, connect_others, caplog):
    served = serve(handshake_timeout=500)
    others = connect_others(served)
    with RawClient(served.port) as silent:
        started = time.monotonic()
        assert nothing_arrives(silent, 0.3)  # not before its time ...
        answer = read_to_eof(silent.sock, 3.0)  # ... but soon after
        elapsed = time.monotonic() - started
        assert answer == b"" or status_of(answer) == 408, answer
        assert 0.45 <= elapsed <= 0.5 + SLACK, elapsed
        port = silent.sock.getsockname()[1]
    # pywsgi closes such a connection without a word; the debug log tells why.
    timed_out = [
        r.getMessage()
        for r in caplog.records
        if r.name == "geventws.handler" and r.levelno == logging.DEBUG
    ]
    assert f"(from ('127.0.0.1', {port})) no whole request head within handshake_timeout" in (
        timed_out
    ), timed_out
    assert_echo(others, "after a silent client")
    close_all(others)
