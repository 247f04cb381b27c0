"""The closing handshake over real sockets: peer Close, close(), drop(), vanishing clients.

Pins the decisions of decisions.md: the peer's code is echoed (an empty Close for an empty
Close), an empty Close is reported as 1005, invalid codes and reasons are answered with
1002/1007, close() waits for the peer's Close reading on, a description over 123 bytes raises,
keepalive stops once closing starts, and the ``close`` event fires exactly once.
"""

from __future__ import annotations

import struct
import time
from typing import Any

import pytest
from conftest import wait_until
from rawclient import client_frame
from recorder import Recorder, nothing_arrives, open_client

from geventws import ConnectionClosedError

TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA


def assert_closed_once(served: Any, recorder: Recorder, code: int, description: str | None) -> None:
    """One ``close`` event on the connection and one on the server, both with these values."""
    events = served.wait_for_event("close")
    wait_until(lambda: recorder.closes, what="the connection's close event")
    assert [event[1:] for event in events] == [(recorder.connections[0], code, description)]
    assert recorder.closes == [(code, description)]
    connection = recorder.connections[0]
    assert connection.state == "closed"
    assert not connection.connected
    assert (connection.close_reason_code, connection.close_description) == (code, description)
    assert connection.wait_closed(0)
    assert served.ws.connections == []


# ------------------------------------------------------------------ the peer's Close


def test_peer_close_is_answered_with_its_code_only_then_tcp_closes(serve):
    recorder = Recorder()
    served = serve(on_connect=recorder)
    client, connection = open_client(served, recorder)
    with client:
        assert (connection.state, connection.connected) == ("open", True)
        client.send_close(1000, "bye")
        reply = client.read_frame()
        assert (reply.opcode, reply.fin, reply.masked) == (CLOSE, True, False)
        assert reply.payload == b"\x03\xe8"  # the code, no reason
        assert client.expect_eof(timeout=2.0) == b""  # the server closes its side first
        # Until the client closes its side too, the connection waits in this state.
        assert connection.state in ("peer_requested_close", "closed")
        assert not connection.connected
        assert connection.close_reason_code == 1000
    assert_closed_once(served, recorder, 1000, "bye")


def test_peer_close_state_is_peer_requested_close_until_tcp_closes(serve):
    recorder = Recorder()
    served = serve(on_connect=recorder)
    client, connection = open_client(served, recorder)
    with client:
        client.send_close(1001)
        assert client.read_frame().payload == b"\x03\xe9"
        assert client.expect_eof(timeout=2.0) == b""
        assert connection.state == "peer_requested_close"
        assert (connection.close_reason_code, connection.close_description) == (
            1001,
            "Remote peer is going away",
        )
        assert recorder.closes == []  # the event waits for the TCP close
    assert_closed_once(served, recorder, 1001, "Remote peer is going away")


def test_empty_peer_close_gets_an_empty_close_and_reports_1005(serve):
    recorder = Recorder()
    served = serve(on_connect=recorder)
    client, _ = open_client(served, recorder)
    with client:
        client.send_close(None)
        reply = client.read_frame()
        assert (reply.opcode, reply.payload) == (CLOSE, b"")
        assert client.expect_eof(timeout=2.0) == b""
    assert_closed_once(served, recorder, 1005, "Reason not provided")


@pytest.mark.parametrize("code", [999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 0, 65535])
def test_peer_close_with_an_invalid_code_is_answered_with_1002(serve, code):
    recorder = Recorder()
    served = serve(on_connect=recorder)
    client, _ = open_client(served, recorder)
    with client:
        client.send_close(code, "x")
        reply = client.read_frame()
        assert reply.opcode == CLOSE
        assert reply.close_code == 1002
        assert reply.close_reason == f"Invalid close code {code}."
        assert client.expect_eof(timeout=2.0) == b""
    assert_closed_once(served, recorder, 1002, f"Invalid close code {code}.")


def test_peer_close_with_an_invalid_utf8_reason_is_answered_with_1007(serve):
    recorder = Recorder()
    served = serve(on_connect=recorder)
    client, _ = open_client(served, recorder)
    with client:
        client.send_frame(CLOSE, struct.pack("!H", 1000) + b"bad \xff\xfe")
        reply = client.read_frame()
        assert (reply.close_code, reply.close_reason) == (1007, "Invalid UTF-8 Data Received")
        assert client.expect_eof(timeout=2.0) == b""
    assert_closed_once(served, recorder, 1007, "Invalid UTF-8 Data Received")


def test_peer_close_with_a_one_byte_payload_is_answered_with_1002(serve):
    recorder = Recorder()
    served = serve(on_connect=recorder)
    client, _ = open_client(served, recorder)
    with client:
        client.send_frame(CLOSE, b"\x03")
        reply = client.read_frame()
        assert (reply.close_code, reply.close_reason) == (
            1002,
            "Close frame with a 1-byte payload.",
        )
        assert client.expect_eof(timeout=2.0) == b""
    assert_closed_once(served, recorder, 1002, "Close frame with a 1-byte payload.")


@pytest.mark.parametrize(
    ("code", "reason", "description"),
    [
        (3000, "", None),
        (3000, "app reason \u00e9", "app reason \u00e9"),
        (4999, "", None),
        (4000, "x" * 123, "x" * 123),
        (1001, "", "Remote peer is going away"),
        (1002, "", "Protocol error"),
        (1003, "", "Unprocessable input"),
        (1007, "", "Invalid data received"),
        (1011, "", "Internal Server Error"),
        (1012, "", None),
        (1014, "", None),
    ],
)
def test_peer_close_with_a_valid_code_is_echoed(serve, code, reason, description):
    recorder = Recorder()
    served = serve(on_connect=recorder)
    client, _ = open_client(served, recorder)
    with client:
        client.send_close(code, reason)
        reply = client.read_frame()
        assert (reply.opcode, reply.payload) == (CLOSE, struct.pack("!H", code))
        assert client.expect_eof(timeout=2.0) == b""
    assert_closed_once(served, recorder, code, description)


def test_data_after_the_peers_close_is_ignored(serve):
    recorder = Recorder()
    served = serve(on_connect=recorder)
    client, _ = open_client(served, recorder)
    with client:
        client.send_text("before")
        assert client.read_message() == "before"
        client.send_raw(
            client_frame(CLOSE, b"\x03\xe8")
            + client_frame(TEXT, b"after")
            + client_frame(PING, b"after")
        )
        reply = client.read_frame()
        assert reply.payload == b"\x03\xe8"
        assert client.expect_eof(timeout=2.0) == b""  # no echo, no Pong
    assert_closed_once(served, recorder, 1000, "Normal connection closure")
    assert recorder.messages == ["before"]


# ------------------------------------------------------------------ close()


def test_close_sends_1000_and_waits_for_the_peers_close(serve):
    recorder = Recorder()
    served = serve(on_connect=recorder)
    client, connection = open_client(served, recorder)
    with client:
        connection.close()
        assert (connection.state, connection.connected) == ("ending", False)
        frame = client.read_frame()
        assert (frame.opcode, frame.fin, frame.masked) == (CLOSE, True, False)
        assert (frame.close_code, frame.close_reason) == (1000, "Normal connection closure")
        # The server keeps the connection open and keeps reading.
        assert nothing_arrives(client, 0.1)
        assert recorder.closes == []
        started = time.monotonic()
        client.send_close(1000)
        assert client.expect_eof(timeout=2.0) == b""  # TCP closed once our Close is in
        assert time.monotonic() - started < 1.0  # not the 5 s close timeout
    assert_closed_once(served, recorder, 1000, "Normal connection closure")


def test_messages_sent_before_the_clients_close_still_arrive(serve):
    recorder = Recorder()
    served = serve(on_connect=recorder)
    client, connection = open_client(served, recorder)
    with client:
        connection.close(4001, "going")
        frame = client.read_frame()
        assert (frame.close_code, frame.close_reason) == (4001, "going")
        client.send_text("late text")
        client.send_frame(BINARY, b"late ", fin=False)
        client.send_frame(CONT, b"binary", fin=True)
        wait_until(lambda: len(recorder.messages) == 2, what="the late messages")
        client.send_close(1000, "ok")
        assert client.expect_eof(timeout=2.0) == b""  # nothing echoed after our Close, then EOF
    assert recorder.messages == ["late text", b"late binary"]
    # The event carries the code this side closed with.
    assert_closed_once(served, recorder, 4001, "going")


@pytest.mark.parametrize(
    ("args", "payload"),
    [
        ((), b"\x03\xe8Normal connection closure"),
        ((1000,), b"\x03\xe8Normal connection closure"),
        ((1001,), b"\x03\xe9Remote peer is going away"),
        ((4000, ""), b"\x0f\xa0"),
        ((3000,), b"\x0b\xb8"),  # no standard text: code only
        ((1012,), b"\x03\xf4"),
        ((4999, "\u00e9" * 61 + "x"), b"\x13\x87" + ("\u00e9" * 61 + "x").encode()),
        ((1000, "y" * 123), b"\x03\xe8" + b"y" * 123),
    ],
)
def test_close_puts_code_and_description_on_the_wire(serve, args, payload):
    recorder = Recorder()
    served = serve(on_connect=recorder)
    client, connection = open_client(served, recorder)
    with client:
        connection.close(*args)
        frame = client.read_frame()
        assert (frame.opcode, frame.payload) == (CLOSE, payload)
        client.send_close(1000)
        assert client.expect_eof(timeout=2.0) == b""
    description = payload[2:].decode() if len(payload) > 2 else None
    if args[1:] == ("",):
        description = ""
    assert_closed_once(served, recorder, struct.unpack("!H", payload[:2])[0], description)


@pytest.mark.parametrize("code", [1005, 1004, 1006, 1015, 999, 2999, 5000, 0])
def test_close_with_an_invalid_code_raises_and_sends_nothing(serve, code):
    recorder = Recorder()
    served = serve(on_connect=recorder)
    client, connection = open_client(served, recorder)
    with client:
        with pytest.raises(ValueError, match=rf"^Close code {code} is not valid\.$"):
            connection.close(code)
        assert (connection.state, connection.connected) == ("open", True)
        assert nothing_arrives(client, 0.05)
        client.send_text("still open")
        assert client.read_message() == "still open"
    assert_closed_once(served, recorder, 1006, "Connection dropped by remote peer.")


@pytest.mark.parametrize("description", ["z" * 124, "\u00e9" * 62, "\u20ac" * 42])
def test_close_with_a_description_over_123_bytes_raises_and_sends_nothing(serve, description):
    recorder = Recorder()
    served = serve(on_connect=recorder)
    client, connection = open_client(served, recorder)
    with client:
        with pytest.raises(ValueError, match="123"):
            connection.close(1000, description)
        assert connection.state == "open"
        assert nothing_arrives(client, 0.05)
        client.send_text("still open")
        assert client.read_message() == "still open"
        connection.close(1000, description[:41])
        assert client.read_frame().close_reason == description[:41]
        client.send_close(1000)
        assert client.expect_eof(timeout=2.0) == b""
    assert_closed_once(served, recorder, 1000, description[:41])


def test_close_twice_sends_one_close_frame(serve):
    recorder = Recorder()
    served = serve(on_connect=recorder, close_timeout=300)
    client, connection = open_client(served, recorder)
    with client:
        connection.close(1000, "first")
        connection.close(4000, "second")  # ignored: not open any more
        assert client.read_frame().close_reason == "first"
        assert client.expect_eof(timeout=2.0) == b""  # close_timeout; no second Close before it
    assert_closed_once(served, recorder, 1000, "first")


def test_close_after_the_peers_close_is_a_no_op(serve):
    recorder = Recorder()
    served = serve(on_connect=recorder)
    client, connection = open_client(served, recorder)
    with client:
        client.send_close(3001, "peer")
        assert client.read_frame().payload == struct.pack("!H", 3001)
        assert client.expect_eof(timeout=2.0) == b""
        connection.close(1000)  # nothing to do
        assert connection.state in ("peer_requested_close", "closed")
    assert_closed_once(served, recorder, 3001, "peer")


# ------------------------------------------------------------------ drop()


def test_drop_sends_1002_then_closes_tcp_and_reports_at_once(serve):
    recorder = Recorder()
    served = serve(on_connect=recorder)
    client, connection = open_client(served, recorder)
    with client:
        connection.drop()
        assert (connection.state, connection.connected) == ("closed", False)
        # The event does not wait for anything from the client.
        wait_until(lambda: recorder.closes, timeout=1.0, what="the close event")
        frame = client.read_frame()
        assert (frame.opcode, frame.close_code, frame.close_reason) == (
            CLOSE,
            1002,
            "Protocol error",
        )
        assert client.expect_eof(timeout=2.0) == b""
    assert_closed_once(served, recorder, 1002, "Protocol error")


def test_drop_with_code_and_description(serve):
    recorder = Recorder()
    served = serve(on_connect=recorder)
    client, connection = open_client(served, recorder)
    with client:
        connection.drop(4002, "kicked out")
        frame = client.read_frame()
        assert (frame.close_code, frame.close_reason) == (4002, "kicked out")
        assert client.expect_eof(timeout=2.0) == b""
    assert_closed_once(served, recorder, 4002, "kicked out")


def test_drop_skipping_the_close_frame_only_closes_tcp(serve):
    recorder = Recorder()
    served = serve(on_connect=recorder)
    client, connection = open_client(served, recorder)
    with client:
        connection.drop(1006, "gone", skip_close_frame=True)
        wait_until(lambda: recorder.closes, timeout=1.0, what="the close event")
        assert client.expect_eof(timeout=2.0) == b""
    assert_closed_once(served, recorder, 1006, "gone")


def test_drop_after_close_ends_the_wait_at_once(serve):
    recorder = Recorder()
    served = serve(on_connect=recorder)  # close_timeout 5 s
    client, connection = open_client(served, recorder)
    with client:
        connection.close(1000, "closing")
        assert client.read_frame().close_reason == "closing"
        started = time.monotonic()
        connection.drop(1001)
        assert client.expect_eof(timeout=2.0) == b""  # no second Close frame after ours
        assert time.monotonic() - started < 1.0
    assert_closed_once(served, recorder, 1001, "Remote peer is going away")


# ------------------------------------------------------------------ vanishing clients


@pytest.mark.parametrize("how", ["shutdown", "close"])
def test_client_vanishing_without_a_close_frame_reports_1006(serve, how):
    recorder = Recorder()
    served = serve(on_connect=recorder)
    client, _ = open_client(served, recorder)
    with client:
        client.send_text("hi")
        assert client.read_message() == "hi"
        if how == "shutdown":
            client.shutdown_write()
            assert client.expect_eof(timeout=2.0) == b""  # the server closes its side in turn
        else:
            client.close()
    assert_closed_once(served, recorder, 1006, "Connection dropped by remote peer.")
    assert recorder.errors == []


def test_client_vanishing_in_the_middle_of_a_frame_reports_1006(serve):
    recorder = Recorder()
    served = serve(on_connect=recorder)
    client, _ = open_client(served, recorder)
    with client:
        client.send_raw(client_frame(BINARY, b"x" * 100)[:50])
        client.shutdown_write()
        assert client.expect_eof(timeout=2.0) == b""
    assert_closed_once(served, recorder, 1006, "Connection dropped by remote peer.")
    assert recorder.messages == []


def test_the_socket_closed_under_a_waiting_reader_ends_the_connection_with_1006(serve):
    """The application closes the socket itself while the reader waits for data: gevent
    throws its error into the waiting reader, which reports it once, with no hang or leak."""
    recorder = Recorder()
    served = serve(on_connect=recorder)
    client, connection = open_client(served, recorder)
    with client:
        client.send_text("hi")
        assert client.read_message() == "hi"  # the reader is back waiting for data
        connection.socket.close()
        assert client.expect_eof(timeout=2.0) == b""
    events = served.wait_for_event("close")
    assert [event[1:3] for event in events] == [(connection, 1006)]
    assert connection.wait_closed(2.0)
    assert len(recorder.closes) == 1


# ------------------------------------------------------------------ keepalive stops

STOPPING_KEEPALIVE = {
    "keepalive": True,
    "keepalive_interval": 50,
    "keepalive_grace_period": 50,
    "drop_connection_on_keepalive_timeout": False,  # would ping every 50 ms forever
    "close_timeout": 500,
}


def test_keepalive_stops_after_close(serve):
    recorder = Recorder()
    served = serve(on_connect=recorder, **STOPPING_KEEPALIVE)
    client, connection = open_client(served, recorder)
    with client:
        connection.close(1000, "stop")
        frame = client.read_until_close()  # pings may come before the Close
        assert frame.close_reason == "stop"
        # The client never answers; for the 500 ms until close_timeout nothing else comes,
        # although a ping would be due every 50 ms.
        started = time.monotonic()
        assert client.expect_eof(timeout=2.0) == b""
        assert time.monotonic() - started >= 0.3
    assert_closed_once(served, recorder, 1000, "stop")


def test_keepalive_stops_after_the_peers_close(serve):
    recorder = Recorder()
    served = serve(on_connect=recorder, **STOPPING_KEEPALIVE)
    client, connection = open_client(served, recorder)
    with client:
        client.send_close(1000, "peer")
        assert client.read_until_close().payload == b"\x03\xe8"
        assert client.expect_eof(timeout=2.0) == b""
        assert connection.state == "peer_requested_close"
        # Keep TCP open: the server waits (close_timeout) for our FIN; no ping in that time
        # may break the socket or turn the close into a 1006.
        wait_until(lambda: recorder.closes, timeout=3.0, what="the close event")
    assert_closed_once(served, recorder, 1000, "peer")
    assert recorder.errors == []


def test_keepalive_stops_after_drop(serve):
    recorder = Recorder()
    served = serve(on_connect=recorder, **STOPPING_KEEPALIVE)
    client, connection = open_client(served, recorder)
    with client:
        connection.drop(4003, "dropped")
        assert client.read_until_close().close_code == 4003
        assert client.expect_eof(timeout=2.0) == b""
    assert_closed_once(served, recorder, 4003, "dropped")
    assert recorder.errors == []


def test_sending_nothing_after_close_is_enforced(serve):
    recorder = Recorder()
    served = serve(on_connect=recorder, close_timeout=300)
    client, connection = open_client(served, recorder)
    with client:
        connection.close()
        with pytest.raises(ConnectionClosedError):
            connection.send("too late")
        with pytest.raises(ConnectionClosedError):
            connection.ping(b"too late")
        assert client.read_frame().opcode == CLOSE
        assert client.expect_eof(timeout=2.0) == b""  # nothing after the Close
    assert_closed_once(served, recorder, 1000, "Normal connection closure")
