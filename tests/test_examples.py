"""The examples, started as their own processes and driven by real clients."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from conftest import in_thread
from rawclient import RawClient

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "examples")


@contextmanager
def example(script: str, *args: str) -> Iterator[int]:
    """Run ``examples/<script>`` on a free port; yield the port; stop it with SIGTERM."""
    process = subprocess.Popen(
        [sys.executable, os.path.join(EXAMPLES, script), "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = in_thread(process.stdout.readline, timeout=15)
        assert banner, process.stderr.read() if process.stderr else "no banner"
        port = int(banner.rstrip().rstrip("/").rsplit(":", 1)[1])
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            exit_code = process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
            raise AssertionError(f"{script} did not stop on SIGTERM") from None
        assert exit_code == 0, process.stderr.read() if process.stderr else exit_code


def test_echo_example_echoes_text_and_binary_with_the_websockets_client():
    from websockets.sync.client import connect

    with example("echo_server.py") as port:

        def talk() -> tuple[object, object, str]:
            with connect(f"ws://127.0.0.1:{port}/") as ws:
                ws.send("héllo")
                text = ws.recv(timeout=5)
                ws.send(b"\x00\x01\x02")
                data = ws.recv(timeout=5)
            page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read()
            return text, data, page.decode()

        text, data, page = in_thread(talk)
        assert text == "héllo"
        assert data == b"\x00\x01\x02"
        assert "new WebSocket" in page


def test_echo_example_flags_set_the_options():
    args = ("--max-received-frame-size", "100", "--fragmentation-threshold", "4096")
    with example("echo_server.py", *args, "--no-keepalive") as port:
        with RawClient(port) as client:
            assert client.handshake().status == 101
            client.send_binary(b"x" * 100)  # at the frame limit: accepted
            assert client.read_message() == b"x" * 100
            client.send_binary(b"x" * 101)
            close = client.read_until_close()
            assert close.close_code == 1009
        with RawClient(port) as client:
            client.handshake()
            client.send_text("y" * 90)  # under the threshold: one frame
            frame = client.read_frame()
            assert (frame.fin, frame.opcode, len(frame.payload)) == (True, 1, 90)


def test_echo_example_fragments_at_the_threshold_flag():
    args = ("--max-received-frame-size", "20000", "--fragmentation-threshold", "4096")
    with example("echo_server.py", *args) as port, RawClient(port) as client:
        client.handshake()
        client.send_binary(b"z" * 10000)
        frames = [client.read_frame() for _ in range(3)]
        assert [len(f.payload) for f in frames] == [4096, 4096, 1808]
        assert [f.opcode for f in frames] == [2, 0, 0]
        assert [f.fin for f in frames] == [False, False, True]


def test_echo_example_rejects_an_unknown_flag():
    result = subprocess.run(
        [sys.executable, os.path.join(EXAMPLES, "echo_server.py"), "--no-such-option", "1"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "--no-such-option" in result.stderr


@pytest.mark.parametrize("script", ["chat_server.py"])
def test_chat_example_broadcasts_to_every_client(script):
    with example(script) as port:
        page = in_thread(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read()
        )
        assert b'new WebSocket(scheme + location.host + "/chat")' in page
        with RawClient(port) as alice, RawClient(port) as bob:
            assert alice.handshake("/chat").status == 101
            assert bob.handshake("/chat").status == 101
            alice.send_text(json.dumps({"name": "alice", "text": "hi bob"}))
            assert alice.read_message() == "alice: hi bob"
            assert bob.read_message() == "alice: hi bob"
        with RawClient(port) as stranger:
            assert stranger.handshake("/elsewhere").status == 404
