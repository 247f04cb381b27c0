"""Flow control: pause()/resume(), and the bounded queue between the reader and the app."""

from __future__ import annotations

from conftest import wait_until
from rawclient import RawClient

from geventws import WebSocketConnection
from geventws.frames import Opcode


def test_pause_stops_delivery_until_resume(serve):
    connections: list[WebSocketConnection] = []
    served = serve(on_connect=connections.append)
    with RawClient(served.port) as client:
        client.handshake()
        wait_until(lambda: connections)
        connection = connections[0]
        connection.pause()
        assert connection.paused
        client.send_text("held back")
        assert connection.receive(timeout=0.2) is None  # bounded: nothing read while paused
        connection.resume()
        assert not connection.paused
        assert connection.receive(timeout=5) == "held back"


def test_a_lagging_application_pauses_reading_and_loses_nothing(serve):
    connections: list[WebSocketConnection] = []
    served = serve(on_connect=connections.append, max_queue=8)
    with RawClient(served.port) as client:
        client.handshake()
        wait_until(lambda: connections)
        connection = connections[0]
        for number in range(200):
            client.send_text(str(number))
        # Nobody receives: the reader stops once max_queue messages wait.
        wait_until(lambda: connection._queued() >= 8)
        assert connection.receive(timeout=5) == "0"
        assert connection._queued() <= 8
        received = ["0"] + [connection.receive(timeout=5) for _ in range(199)]
        assert received == [str(number) for number in range(200)]
        client.send_close(1000)
        client.read_until_close()
    assert connection.wait_closed(5)
    assert connection.receive() is None


def test_a_closed_connection_is_freed_without_waiting_for_the_garbage_collector(serve):
    import gc
    import weakref

    references: list[weakref.ref[WebSocketConnection]] = []

    def on_connect(connection: WebSocketConnection) -> None:
        references.append(weakref.ref(connection))
        connection.on("message", connection.send)  # a listener that refers back to it

    served = serve(on_connect=on_connect)
    gc.disable()
    try:
        with RawClient(served.port) as client:
            client.handshake()
            client.send_text("ping")
            assert client.read_message() == "ping"
            client.send_close(1000)
            client.read_until_close()
            client.expect_eof()
        served.wait_for_event("close")
        wait_until(lambda: references[0]().wait_closed(0))  # type: ignore[union-attr]
        served.events.clear()  # the fixture's own record of the connection
        wait_until(lambda: references[0]() is None, what="the connection to be freed")
    finally:
        gc.enable()


def test_idle_connection_gives_back_its_dispatcher_and_gets_one_again(serve):
    """A connection whose events went through a dispatcher greenlet (``ping`` listeners run
    there) gives it back after two sweeps without events; the next event spawns a new one
    and is still delivered, in order."""
    pings: list[bytes] = []

    def on_connect(connection: WebSocketConnection) -> None:
        connection.on("ping", lambda cancel, data: pings.append(data))
        connection.on("message", connection.send)

    served = serve(on_connect=on_connect)
    with RawClient(served.port) as client:
        assert client.handshake().status == 101
        client.send_frame(Opcode.PING, b"first")
        assert client.read_frame().payload == b"first"
        ((_, connection),) = served.wait_for_event("connect")
        assert connection._dispatcher is not None
        served.ws._release_idle_dispatchers()  # notes the count of events
        assert connection._dispatcher is not None
        served.ws._release_idle_dispatchers()  # nothing new since: released
        wait_until(lambda: connection._dispatcher is None, what="dispatcher to end")
        client.send_frame(Opcode.PING, b"second")
        client.send_text("third")
        assert client.read_frame().payload == b"second"
        assert client.read_message() == "third"
        assert pings == [b"first", b"second"]
        served.ws._release_idle_dispatchers()
        assert connection._dispatcher is not None  # a new event came: kept
