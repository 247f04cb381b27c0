"""Where listeners run: in the reader while they answer at once, and what happens when one
blocks there (the reading moves to a new greenlet; events keep their order)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import gevent
import pytest
from conftest import wait_until
from gevent.event import Event
from greenlet import getcurrent
from rawclient import RawClient, client_frame

from geventws import ConnectionClosedError, WebSocketConnection
from geventws.frames import Opcode

WAIT = 5.0


def test_a_listener_that_answers_at_once_runs_in_the_reader_with_no_dispatcher(serve):
    seen: list[tuple[object, object]] = []

    def on_connect(connection: WebSocketConnection) -> None:
        def on_message(data: str | bytes) -> None:
            seen.append((getcurrent(), connection._reader))
            connection.send(data)

        connection.on("message", on_message)

    served = serve(on_connect=on_connect)
    with RawClient(served.port) as client:
        client.handshake()
        for text in ("one", "two", "three"):
            client.send_text(text)
        assert [client.read_message() for _ in range(3)] == ["one", "two", "three"]
        ((_, connection),) = served.wait_for_event("connect")
        assert [running is reader for running, reader in seen] == [True, True, True]
        assert connection._dispatcher is None  # no second greenlet was needed


def test_several_listeners_run_in_the_reader_in_order_and_one_that_raises_stops_none(serve, caplog):
    calls: list[tuple[str, str | bytes, bool]] = []

    def on_connect(connection: WebSocketConnection) -> None:
        def first(data: str | bytes) -> None:
            calls.append(("first", data, getcurrent() is connection._reader))
            raise RuntimeError(f"first listener fails on {data!r}")

        def second(data: str | bytes) -> None:
            calls.append(("second", data, getcurrent() is connection._reader))
            connection.send(data)

        connection.on("message", first)
        connection.on("message", second)

    served = serve(on_connect=on_connect)
    with caplog.at_level(logging.ERROR, logger="geventws"), RawClient(served.port) as client:
        client.handshake()
        client.send_text("one")
        client.send_binary(b"two")
        assert [client.read_message() for _ in range(2)] == ["one", b"two"]
        ((_, connection),) = served.wait_for_event("connect")
        assert calls == [
            ("first", "one", True),
            ("second", "one", True),
            ("first", b"two", True),
            ("second", b"two", True),
        ]
        assert connection._dispatcher is None
        failures = [
            r for r in caplog.records if r.exc_info and "first listener fails" in str(r.exc_info[1])
        ]
        assert [r.getMessage().startswith("'message' listener") for r in failures] == [True, True]


def echo_after_release(
    releases: dict[str, Event], log: list[tuple[str | bytes, object]]
) -> Callable[[WebSocketConnection], None]:
    """A ``connect`` listener: echo every message, logging it with the greenlet its listener
    runs in; a text named in ``releases`` first waits (bounded) for that Event."""

    def on_connect(connection: WebSocketConnection) -> None:
        def on_message(data: str | bytes) -> None:
            log.append((data, getcurrent()))
            release = releases.get(data) if isinstance(data, str) else None
            if release is not None:
                assert release.wait(WAIT)
            connection.send(data)

        connection.on("message", on_message)

    return on_connect


def test_a_blocked_listener_does_not_stop_reading_and_later_messages_keep_their_order(serve):
    release = Event()
    log: list[tuple[str | bytes, object]] = []
    served = serve(on_connect=echo_after_release({"block": release}, log))
    with RawClient(served.port) as client:
        client.handshake()
        client.send_text("block")
        wait_until(lambda: log, what="the listener to block")
        ((_, connection),) = served.wait_for_event("connect")
        # Still reading: a Ping sent now is answered while the listener waits.
        client.send_frame(Opcode.PING, b"still there?")
        frame = client.read_frame()
        assert (frame.opcode, frame.payload) == (Opcode.PONG, b"still there?")
        assert connection._reader is not log[0][1]
        for text in ("after-1", "after-2"):
            client.send_text(text)
        wait_until(lambda: connection._queued() == 2, what="two messages queued")
        assert [data for data, _ in log] == ["block"]  # nothing overtakes the blocked listener
        release.set()
        assert [client.read_message() for _ in range(3)] == ["block", "after-1", "after-2"]
        assert [data for data, _ in log] == ["block", "after-1", "after-2"]
        # The greenlet that blocked now delivers the events; a quick listener runs there.
        client.send_text("later")
        assert client.read_message() == "later"
        client.close_handshake()
    ((_, closed, code, _),) = served.wait_for_event("close")
    assert (closed, code) == (connection, 1000)


def test_the_rest_of_a_chunk_is_read_on_after_its_listener_blocks(serve):
    """Several frames in one TCP segment: the first blocks its listener; the frames behind
    it in the same chunk (a Ping, messages, the Close) are handled by the new reader."""
    release = Event()
    served = serve(on_connect=echo_after_release({"block": release}, []))
    with RawClient(served.port) as client:
        client.handshake()
        client.send_raw(
            client_frame(Opcode.TEXT, b"block")
            + client_frame(Opcode.PING, b"p")
            + client_frame(Opcode.TEXT, b"next")
        )
        frame = client.read_frame()
        assert (frame.opcode, frame.payload) == (Opcode.PONG, b"p")
        release.set()
        assert [client.read_message(), client.read_message()] == ["block", "next"]
        client.close_handshake()
    served.wait_for_event("close")


def test_a_listener_blocked_twice_still_ends_with_one_close_event_and_no_leak(serve):
    """Two hand-overs in a row (the fixture checks no greenlet or socket is left)."""
    releases = {"block0": Event(), "block1": Event()}
    log: list[tuple[str | bytes, object]] = []
    served = serve(on_connect=echo_after_release(releases, log))
    with RawClient(served.port) as client:
        client.handshake()
        client.send_text("block0")
        wait_until(lambda: [data for data, _ in log] == ["block0"], what="first block")
        releases["block0"].set()
        assert client.read_message() == "block0"
        client.send_text("block1")
        wait_until(lambda: len(log) == 2, what="second block")
        client.send_text("quick")
        releases["block1"].set()
        assert [client.read_message(), client.read_message()] == ["block1", "quick"]
        client.close_handshake()
    assert len(served.wait_for_event("close")) == 1


def test_drop_from_a_listener_lets_the_listener_finish_then_closes(serve):
    after_drop: list[str] = []

    def on_connect(connection: WebSocketConnection) -> None:
        def on_message(data: str | bytes) -> None:
            connection.drop(1008, "no thanks")
            after_drop.append(connection.state)
            with pytest.raises(ConnectionClosedError):
                connection.send("too late")
            after_drop.append("raised")

        connection.on("message", on_message)

    served = serve(on_connect=on_connect)
    with RawClient(served.port) as client:
        client.handshake()
        client.send_text("hello")
        frame = client.read_until_close()
        assert (frame.close_code, frame.close_reason) == (1008, "no thanks")
        client.expect_eof()
    ((_, _, code, description),) = served.wait_for_event("close")
    assert (code, description) == (1008, "no thanks")
    assert after_drop == ["closed", "raised"]


def test_close_from_a_listener_finishes_the_closing_handshake(serve):
    def on_connect(connection: WebSocketConnection) -> None:
        connection.on("message", lambda data: connection.close(4000, "bye"))

    served = serve(on_connect=on_connect)
    with RawClient(served.port) as client:
        client.handshake()
        client.send_text("hello")
        frame = client.read_until_close()
        assert (frame.close_code, frame.close_reason) == (4000, "bye")
        client.send_close(4000)
        client.expect_eof()
    ((_, _, code, _),) = served.wait_for_event("close")
    assert code == 4000


def test_dropping_a_connection_whose_listener_is_blocked_closes_the_socket_at_once(serve, caplog):
    """The blocked listener is left alone until ``close_timeout``; then it is cancelled so
    that the ``close`` event is delivered."""
    caplog.set_level(logging.ERROR, logger="geventws")
    blocked = Event()
    cancelled = Event()

    def on_connect(connection: WebSocketConnection) -> None:
        def on_message(data: str | bytes) -> None:
            blocked.set()
            try:
                gevent.sleep(60)
            except gevent.GreenletExit:
                cancelled.set()
                raise

        connection.on("message", on_message)

    served = serve(on_connect=on_connect, close_timeout=300)
    with RawClient(served.port) as client:
        client.handshake()
        client.send_text("stuck")
        assert blocked.wait(WAIT)
        ((_, connection),) = served.wait_for_event("connect")
        gevent.spawn(connection.drop, 1011, "shutting")
        frame = client.read_until_close()
        assert frame.close_code == 1011
        client.expect_eof()
        assert cancelled.wait(WAIT)
    ((_, _, code, _),) = served.wait_for_event("close")
    assert code == 1011


def test_messages_without_listeners_go_straight_to_receive(serve):
    connections: list[WebSocketConnection] = []
    served = serve(on_connect=connections.append)
    with RawClient(served.port) as client:
        client.handshake()
        wait_until(lambda: connections)
        connection = connections[0]
        for text in ("a", "b"):
            client.send_text(text)
        assert [connection.receive(timeout=WAIT), connection.receive(timeout=WAIT)] == ["a", "b"]
        assert connection._dispatcher is None
        # A listener added later takes what arrives next.
        got: list[str | bytes] = []
        connection.on("message", got.append)
        client.send_text("c")
        wait_until(lambda: got == ["c"], what="the listener to get 'c'")


def test_big_messages_go_to_their_listener_in_the_reader_and_keep_their_order(serve):
    """Messages of any size go to their listener right in the reader (a big one is answered
    while it is still in the cache); small ones behind them keep their turn."""
    ran_in: list[tuple[int, bool]] = []

    def on_connect(connection: WebSocketConnection) -> None:
        def on_message(data: str | bytes) -> None:
            ran_in.append((len(data), getcurrent() is connection._reader))
            connection.send(data)

        connection.on("message", on_message)

    served = serve(on_connect=on_connect, max_received_frame_size=1 << 20)
    big = bytes(range(256)) * 192  # 48 KiB
    huge = bytes(range(251)) * 2000  # 502,000 bytes: received through the payload buffer
    with RawClient(served.port) as client:
        client.handshake()
        client.send_raw(
            client_frame(Opcode.BINARY, b"x" * 16384)
            + client_frame(Opcode.BINARY, big)
            + client_frame(Opcode.BINARY, huge)
            + client_frame(Opcode.TEXT, b"small")
        )
        assert client.read_message() == b"x" * 16384
        assert client.read_message() == big
        assert client.read_message() == huge
        assert client.read_message() == "small"
    assert ran_in == [(16384, True), (len(big), True), (len(huge), True), (5, True)]


def test_a_big_answer_the_socket_cannot_take_at_once_moves_the_reading(serve):
    """A client that does not read: the echo of a 4 MiB message cannot all go into the
    socket, its listener blocks in the reader, so the reading moves to a fresh greenlet and
    a ping sent meanwhile is still answered; once the client reads, everything arrives."""
    ran_in: list[object] = []
    size = 4 << 20

    def on_connect(connection: WebSocketConnection) -> None:
        def on_message(data: str | bytes) -> None:
            ran_in.append(getcurrent())
            connection.send(data)

        connection.on("message", on_message)

    served = serve(
        on_connect=on_connect, max_received_frame_size=size, max_received_message_size=size
    )
    payload = bytes(range(253)) * (size // 253)
    with RawClient(served.port) as client:
        client.handshake()
        ((_, connection),) = served.wait_for_event("connect")
        reader = connection._reader
        client.send_raw(client_frame(Opcode.BINARY, payload))
        wait_until(lambda: connection._reader is not reader, what="the reading to move")
        client.send_raw(client_frame(Opcode.PING, b"still there?"))
        assert client.read_message() == payload
        frame = client.read_frame()
        assert (frame.opcode, frame.payload) == (Opcode.PONG, b"still there?")
        client.close_handshake()
    served.wait_for_event("close")
    assert ran_in == [reader]


def test_many_connections_whose_listeners_block_now_and_then_lose_and_reorder_nothing(serve):
    """20 connections pipelining 100 messages each; every third message's listener sleeps,
    so the reading changes greenlet about 33 times per connection while messages keep
    arriving. Every echo comes back, in order, and every connection closes cleanly."""
    connections, messages = 20, 100

    def on_connect(connection: WebSocketConnection) -> None:
        def on_message(data: str | bytes) -> None:
            if isinstance(data, str) and int(data.split(":")[1]) % 3 == 0:
                gevent.sleep(0.001)
            connection.send(data)

        connection.on("message", on_message)

    served = serve(on_connect=on_connect)

    def one_client(number: int) -> list[str | bytes]:
        with RawClient(served.port) as client:
            client.handshake()
            client.send_raw(
                b"".join(
                    client_frame(Opcode.TEXT, f"{number}:{index}".encode())
                    for index in range(messages)
                )
            )
            echoes = [client.read_message() for _ in range(messages)]
            client.close_handshake()
            return echoes

    clients = [gevent.spawn(one_client, number) for number in range(connections)]
    gevent.joinall(clients, timeout=30, raise_error=True)
    for number, greenlet in enumerate(clients):
        assert greenlet.value == [f"{number}:{index}" for index in range(messages)]
    assert len(served.wait_for_event("close", connections)) == connections
