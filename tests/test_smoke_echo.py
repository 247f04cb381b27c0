"""End to end: echo over real sockets, with our raw client and the websockets package."""

from __future__ import annotations

from conftest import in_thread, wait_until
from rawclient import RawClient, client_frame


def test_raw_client_echo_and_close(serve):
    served = serve()
    with RawClient(served.port) as client:
        assert client.handshake().status == 101
        client.send_text("héllo")
        assert client.read_message() == "héllo"
        client.send_binary(b"\x00\xff")
        assert client.read_message() == b"\x00\xff"
        client.send_close(1000, "bye")
        reply = client.read_until_close()
        assert reply.close_code == 1000
        assert client.expect_eof() == b""
    events = served.wait_for_event("close")
    assert events[0][2:] == (1000, "bye")
    wait_until(lambda: not served.ws.connections)


def test_websockets_package_client_echoes(serve):
    from websockets.sync.client import connect

    served = serve()

    def talk():
        with connect(f"ws://127.0.0.1:{served.port}/chat", subprotocols=["Chat"]) as ws:
            ws.send("hello")
            text = ws.recv(timeout=5)
            ws.send(b"\x01" * 60_000)
            data = ws.recv(timeout=5)
            return ws.subprotocol, text, data

    protocol, text, data = in_thread(talk)
    assert protocol == "Chat"
    assert text == "hello"
    assert data == b"\x01" * 60_000
    events = served.wait_for_event("close")
    assert events[0][2] == 1000


def test_bytes_sent_with_the_handshake_are_the_first_frames(serve):
    served = serve()
    with RawClient(served.port) as client:
        early = client_frame(0x1, b"first") + client_frame(0x1, b"second")
        assert client.handshake(extra=early).status == 101
        assert client.read_message() == "first"
        assert client.read_message() == "second"
