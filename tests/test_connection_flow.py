"""Flow control: pause()/resume(), and the bounded queue between the reader and the app."""

from __future__ import annotations

from conftest import wait_until
from rawclient import RawClient

from geventws import WebSocketConnection


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
        wait_until(lambda: len(connection._received) >= 8)
        assert connection.receive(timeout=5) == "0"
        assert len(connection._received) + len(connection._inbox) <= 8
        received = ["0"] + [connection.receive(timeout=5) for _ in range(199)]
        assert received == [str(number) for number in range(200)]
        client.send_close(1000)
        client.read_until_close()
    assert connection.wait_closed(5)
    assert connection.receive() is None
