"""geventws's gunicorn worker (``-k geventws.gunicorn.Worker``) under real gunicorn processes.

Every test starts gunicorn in a subprocess on a free port of 127.0.0.1 (tests/gunicorn_helpers.py)
with the small WSGI app of tests/apps/wsapp.py, and talks to it with real clients: the
``websockets`` package, and :class:`rawclient.RawClient` where the exact bytes (Close codes, the
HTTP status of a refused upgrade) matter. Shutdowns are driven by signals to the gunicorn
master, as an init system or an operator sends them.
"""

from __future__ import annotations

import http.client
import json
import os
import resource
import signal
import socket
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator

import gevent
import gevent.ssl
import pytest
import trustme
from gevent.pool import Pool
from gunicorn_helpers import REPOSITORY, Gunicorn, free_port, gunicorn, gunicorn_command
from rawclient import RawClient, ServerFrame
from websockets.exceptions import ConnectionClosedOK
from websockets.sync.client import connect

APP = "tests.apps.wsapp:app"
GOING_AWAY = 1001
SHUTDOWN_REASON = "The server is shutting down."
#: What must never show in gunicorn's output on a normal start and shutdown.
NOISE = ("Traceback", "failed with", "Greenlet", "[ERROR]", "[CRITICAL]", "SIGKILL", "Exception")


def assert_quiet(running: Gunicorn) -> None:
    """gunicorn's log holds no traceback, greenlet failure, error or killed worker."""
    noisy = [line for line in running.lines if any(word in line for word in NOISE)]
    assert not noisy, "".join(running.lines)


def timed_exit(running: Gunicorn, signum: int, timeout: float = 30.0) -> tuple[int, float]:
    """Send ``signum`` to the master; wait (in a thread, so greenlets of this process keep
    running meanwhile) for it to exit. Returns the exit status and the seconds it took."""

    def wait() -> tuple[int, float]:
        status = running.wait(timeout)
        return status, time.monotonic()

    started = time.monotonic()
    running.signal(signum)
    status, ended = gevent.get_hub().threadpool.spawn(wait).get(timeout=timeout + 5)
    return status, ended - started


def open_echo(port: int, path: str = "/echo", timeout: float = 5.0) -> RawClient:
    """A RawClient with a completed handshake on ``path``, checked to echo once."""
    client = RawClient(port, timeout=timeout)
    assert client.handshake(path).status == 101
    if path == "/echo":
        client.send_text("ping")
        assert client.read_message() == "ping"
    return client


def answer_close(client: RawClient) -> ServerFrame:
    """Read the server's Close, answer it, see the server close TCP, and close ours."""
    close = client.read_until_close()
    client.send_close(close.close_code or 1000)
    assert client.expect_eof() == b""
    client.close()
    return close


@pytest.fixture(scope="module")
def shared() -> Iterator[Gunicorn]:
    """One gunicorn for the tests that leave it running."""
    with gunicorn(APP, "--graceful-timeout", "5") as running:
        yield running
    assert running.process.returncode == 0
    assert_quiet(running)


# ---------------------------------------------------------------------- serving


def test_echo_over_ws(shared: Gunicorn) -> None:
    """The ``websockets`` client talks to the app's ``/echo`` view through the worker."""
    with connect(f"ws://127.0.0.1:{shared.port}/echo", open_timeout=5) as ws:
        ws.send("héllo")
        assert ws.recv(timeout=5) == "héllo"
        ws.send(b"\x00\xff" * 1000)
        assert ws.recv(timeout=5) == b"\x00\xff" * 1000


def test_access_log_shows_101_and_the_path(shared: Gunicorn) -> None:
    """gunicorn's access log has the upgrade as ``"GET <path> HTTP/1.1" 101``."""
    marker = uuid.uuid4().hex
    with connect(f"ws://127.0.0.1:{shared.port}/echo?m={marker}", open_timeout=5) as ws:
        ws.send("x")
        assert ws.recv(timeout=5) == "x"
    (line,) = shared.wait_for_line(lambda line: marker in line)
    assert f'"GET /echo?m={marker} HTTP/1.1" 101 ' in line
    assert "websockets/" in line  # the user agent: gunicorn's request headers are there too


def test_gunicorn_environ_keys_reach_the_view(shared: Gunicorn) -> None:
    """The upgrade request's environ is gunicorn's: ``RAW_URI``, ``gunicorn.sock``, its
    ``SERVER_SOFTWARE``."""
    with connect(f"ws://127.0.0.1:{shared.port}/environ?a=1&b=%20", open_timeout=5) as ws:
        report = json.loads(ws.recv(timeout=5))
    assert report["RAW_URI"] == "/environ?a=1&b=%20"
    assert report["QUERY_STRING"] == "a=1&b=%20"
    assert report["gunicorn.sock"] is True
    assert "gunicorn/" in report["SERVER_SOFTWARE"]
    assert report["wsgi.url_scheme"] == "http"


def test_plain_http_routes_still_answer(shared: Gunicorn) -> None:
    """Plain requests reach the app, with keep-alive, and show in the access log."""
    connection = http.client.HTTPConnection("127.0.0.1", shared.port, timeout=5)
    try:
        connection.request("GET", "/hello")
        response = connection.getresponse()
        assert response.status == 200
        assert response.read().startswith(b"hello from ")
        connection.request("GET", "/echo")  # a WebSocket route without the upgrade headers
        response = connection.getresponse()
        assert response.status == 426
        assert response.read() == b"WebSocket only\n"
    finally:
        connection.close()
    shared.wait_for_line(lambda line: '"GET /hello HTTP/1.1" 200 ' in line)
    shared.wait_for_line(lambda line: '"GET /echo HTTP/1.1" 426 ' in line)


def test_view_rejects_with_403_and_reason(shared: Gunicorn) -> None:
    """The view's ``reject(403, reason)`` reaches the client; with the cookie it accepts."""
    with RawClient(shared.port) as client:
        response = client.handshake("/private")
        assert response.status == 403
        assert response.header("X-WebSocket-Reject-Reason") == "Log in first."
        assert client.expect_eof() == b""
    with RawClient(shared.port) as client:
        assert client.handshake("/private", {"Cookie": "session=good"}).status == 101
        client.send_text("in")
        assert client.read_message() == "in"
        client.send_close(1000)
        assert client.read_until_close().close_code == 1000
        assert client.expect_eof() == b""
    shared.wait_for_line(lambda line: '"GET /private HTTP/1.1" 403 ' in line)


def test_upgrade_to_a_route_without_a_view_gets_the_apps_404(shared: Gunicorn) -> None:
    """No view takes the upgrade: the app's own 404 goes out, and the connection ends."""
    with RawClient(shared.port) as client:
        client.send_raw(client.request_bytes("/nowhere"))
        response = client.read_response()
        assert response.status == 404
        assert client.expect_eof() == b"no route /nowhere\n"
    shared.wait_for_line(lambda line: '"GET /nowhere HTTP/1.1" 404 ' in line)


def test_invalid_handshake_gets_the_precise_answer(shared: Gunicorn) -> None:
    """An unsupported version on a WebSocket route: 426 with the version we speak."""
    with RawClient(shared.port) as client:
        client.send_raw(client.request_bytes("/echo", {"Sec-WebSocket-Version": "12"}))
        response = client.read_response()
        assert response.status == 426
        assert response.header("Sec-WebSocket-Version") == "13"
        assert client.expect_eof() == b""


# ---------------------------------------------------------------------- options


def test_options_from_a_worker_subclass() -> None:
    """``websocket_options`` on a Worker subclass (``-k tests.apps.workers.Small...``)."""
    worker_class = "tests.apps.workers.SmallMessagesWorker"
    with gunicorn(APP, worker_class=worker_class) as running, open_echo(running.port) as client:
        client.send_text("x" * 16)
        assert client.read_message() == "x" * 16
        client.send_text("x" * 17)
        assert answer_close(client).close_code == 1009
    assert running.process.returncode == 0


def test_options_from_the_config_files_post_worker_init() -> None:
    """``worker.websocket_options = {...}`` in the config file's ``post_worker_init`` hook."""
    config = os.path.join(REPOSITORY, "tests", "apps", "gunicorn_conf.py")
    with gunicorn(APP, "-c", config) as running, open_echo(running.port) as client:
        client.send_text("x" * 8)
        assert client.read_message() == "x" * 8
        client.send_text("x" * 9)
        assert answer_close(client).close_code == 1009


def test_invalid_options_stop_gunicorn_with_a_boot_error() -> None:
    """A bad option is a boot error (exit status 3), not a worker restarting in a loop."""
    command = gunicorn_command(
        APP,
        "-c",
        os.path.join(REPOSITORY, "tests", "apps", "bad_options_conf.py"),
        port=free_port(),
    )
    result = subprocess.run(
        command, cwd=REPOSITORY, capture_output=True, text=True, timeout=30, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 3, output
    assert "unknown option 'no_such_option'" in output
    assert "Worker failed to boot" in output


# ---------------------------------------------------------------------- shutting down


def test_sigterm_sends_going_away_and_exits_within_graceful_timeout() -> None:
    """SIGTERM: every open WebSocket gets Close 1001, the worker waits for the closing
    handshakes, and gunicorn exits 0 well within ``graceful_timeout``."""
    with gunicorn(APP, "--graceful-timeout", "10") as running:
        clients = [open_echo(running.port) for _ in range(3)]
        started = time.monotonic()
        running.signal(signal.SIGTERM)
        closes = [answer_close(client) for client in clients]
        status = running.wait(timeout=15)
        elapsed = time.monotonic() - started
        for client in clients:
            client.close()
    print(f"\nSIGTERM with 3 WebSockets open: gunicorn exited {status} after {elapsed:.3f} s")
    assert [(close.close_code, close.close_reason) for close in closes] == [
        (GOING_AWAY, SHUTDOWN_REASON)
    ] * 3
    assert status == 0
    assert elapsed < 10
    running.wait_for_line(lambda line: "Closing 3 WebSocket connection(s) with 1001" in line)
    assert len(running.wait_for_line(lambda line: '"GET /echo HTTP/1.1" 101 ' in line)) == 3
    assert_quiet(running)


def test_sigterm_finishes_http_in_flight_and_closes_idle_keep_alive() -> None:
    """SIGTERM: a plain HTTP request in flight still gets its whole response; an idle
    keep-alive connection is closed at once instead of holding the stop until a timeout."""
    with gunicorn(APP, "--graceful-timeout", "10") as running:
        idle = RawClient(running.port)
        idle.send_raw(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        assert idle.read_response().status == 200
        busy = RawClient(running.port)
        busy.send_raw(b"POST /relay HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab")
        assert busy.read_response().status == 200
        while b"started" not in busy.buffer:  # the app is running: the request is in flight
            chunk = busy.sock.recv(65536)
            assert chunk, "EOF before the first chunk"
            busy.buffer += chunk
        websocket = open_echo(running.port)
        started = time.monotonic()
        running.signal(signal.SIGTERM)
        assert answer_close(websocket).close_code == GOING_AWAY  # the worker is stopping
        idle.expect_eof()  # closed without waiting for graceful_timeout
        idle_closed = time.monotonic() - started
        busy.send_raw(b"cde")
        rest = busy.expect_eof()
        status = running.wait(timeout=10)
        elapsed = time.monotonic() - started
        for client in (idle, busy):
            client.close()
    assert b"got abcde" in rest
    assert rest.endswith(b"0\r\n\r\n")  # the chunked body is complete
    assert idle_closed < 1.0
    assert status == 0
    assert elapsed < 2.0
    assert_quiet(running)


def test_sigterm_drops_a_peer_that_never_answers_within_graceful_timeout() -> None:
    """A client that never answers the Close (close_timeout is 5 s) is dropped in time:
    the worker exits by itself before gunicorn's ``graceful_timeout`` (4 s) would have it
    killed, and gunicorn exits 0."""
    with gunicorn(APP, "--graceful-timeout", "4") as running:
        silent = open_echo(running.port)
        status, elapsed = timed_exit(running, signal.SIGTERM, timeout=10)
        close = silent.read_until_close()
        assert silent.expect_eof() == b""
        silent.close()
    print(f"\nSIGTERM, peer not answering, graceful_timeout 4: exit {status} after {elapsed:.3f} s")
    assert close.close_code == GOING_AWAY
    assert status == 0
    assert elapsed < 4.0
    running.wait_for_line(lambda line: "Worker graceful timeout" in line)
    assert not [line for line in running.lines if "SIGKILL" in line or "Traceback" in line]


def test_sigquit_sends_going_away_and_exits_quickly() -> None:
    """SIGQUIT (quick stop): the 1001 still goes out to every client; the wait for the
    answers is short (1 s) even with ``graceful_timeout`` 30 and a client that never answers."""
    with gunicorn(APP, "--graceful-timeout", "30") as running:
        answering = open_echo(running.port)
        silent = open_echo(running.port)
        answered = gevent.spawn(answer_close, answering)
        status, elapsed = timed_exit(running, signal.SIGQUIT, timeout=10)
        close = answered.get(timeout=5)
        silent_close = silent.read_until_close()
        assert silent.expect_eof() == b""
        for client in (answering, silent):
            client.close()
    print(f"\nSIGQUIT: gunicorn exited {status} after {elapsed:.3f} s")
    assert close.close_code == GOING_AWAY
    assert silent_close.close_code == GOING_AWAY
    assert status == 0
    assert elapsed < 3.0
    assert not [line for line in running.lines if "SIGKILL" in line or "Traceback" in line]


def test_sigquit_during_a_graceful_stop_shortens_the_wait() -> None:
    """SIGTERM, then SIGQUIT while the worker waits for a silent client: the master allows
    2 s from there; the worker cuts its wait short and exits 0 before being killed."""
    with gunicorn(APP, "--graceful-timeout", "30") as running:
        silent = open_echo(running.port)
        running.signal(signal.SIGTERM)
        assert silent.read_until_close().close_code == GOING_AWAY  # the graceful wait began
        status, elapsed = timed_exit(running, signal.SIGQUIT, timeout=10)
        assert silent.expect_eof() == b""
        silent.close()
    print(f"\nSIGQUIT during the graceful wait: gunicorn exited {status} after {elapsed:.3f} s")
    assert status == 0
    assert elapsed < 2.0
    running.wait_for_line(lambda line: "Quick shutdown requested" in line)
    assert not [line for line in running.lines if "SIGKILL" in line or "Traceback" in line]


def test_a_client_that_does_not_read_does_not_hold_up_the_others() -> None:
    """One client stops reading until both socket buffers are full, so nothing more can be
    written to it; on SIGTERM the other clients still get their 1001 at once, the stuck one
    is dropped at the deadline, and gunicorn exits 0 within ``graceful_timeout``."""
    with gunicorn(APP, "--graceful-timeout", "4") as running:
        stuck = open_echo(running.port)
        stuck.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.sock.settimeout(1.0)
        payload = b"x" * 60000
        with pytest.raises(socket.timeout):
            # The echo view sends each message back; we read none. At most ~60 MB.
            for _ in range(1000):
                stuck.send_binary(payload)
        others = [open_echo(running.port) for _ in range(2)]
        started = time.monotonic()
        running.signal(signal.SIGTERM)
        closes = [answer_close(client) for client in others]
        answered = time.monotonic() - started
        status = running.wait(timeout=10)
        elapsed = time.monotonic() - started
        stuck.close()
    print(
        f"\nstuck client: others answered in {answered:.3f} s, exit {status} after {elapsed:.3f} s"
    )
    assert [close.close_code for close in closes] == [GOING_AWAY] * 2
    assert answered < 1.0
    assert status == 0
    assert elapsed < 4.0
    running.wait_for_line(lambda line: "Worker graceful timeout" in line)
    assert not [line for line in running.lines if "SIGKILL" in line or "Traceback" in line]


@pytest.mark.parametrize("signum", [signal.SIGQUIT, signal.SIGINT], ids=["SIGQUIT", "SIGINT"])
def test_quick_stop_with_answering_clients_is_quiet(signum: int) -> None:
    """SIGQUIT or SIGINT (the master then sends SIGQUIT to its workers) with clients that
    answer: 1001 each, exit 0, nothing noisy in the log."""
    with gunicorn(APP, "--graceful-timeout", "30") as running:
        clients = [open_echo(running.port) for _ in range(2)]
        running.signal(signum)
        closes = [answer_close(client) for client in clients]
        status = running.wait(timeout=10)
        for client in clients:
            client.close()
    assert [close.close_code for close in closes] == [GOING_AWAY] * 2
    assert status == 0
    assert_quiet(running)


def test_sighup_old_worker_sends_going_away_and_new_worker_serves() -> None:
    """SIGHUP: the old worker closes its WebSockets with 1001 and exits; new connections
    are served by the new worker."""
    with gunicorn(APP, "--graceful-timeout", "10") as running:
        old = RawClient(running.port)
        assert old.handshake("/pid").status == 101
        old_pid = int(old.read_message())
        running.signal(signal.SIGHUP)
        close = answer_close(old)
        old.close()
        assert close.close_code == GOING_AWAY
        running.wait_for_line(lambda line: f"Worker exiting (pid: {old_pid})" in line)
        running.wait_for_line(lambda line: "Booting worker" in line, count=2)
        with RawClient(running.port) as new:
            assert new.handshake("/pid").status == 101
            new_pid = int(new.read_message())
            new.send_text("after reload")
            assert new.read_message() == "after reload"
            new.send_close(1000)
            assert new.read_until_close().close_code == 1000
    assert new_pid != old_pid
    assert running.process.returncode == 0
    assert_quiet(running)


# ---------------------------------------------------------------------- several workers


def test_four_workers_serve_connections_side_by_side() -> None:
    """``-w 4 --worker-connections 10``: 32 WebSockets open at once cannot fit in three
    workers' pools, so all four workers serve some; every one echoes."""
    with gunicorn(APP, "--worker-connections", "10", workers=4) as running:
        clients = []
        try:
            pids = []
            for _ in range(32):
                client = RawClient(running.port)
                clients.append(client)
                assert client.handshake("/pid").status == 101
                pids.append(int(client.read_message()))
            for index, client in enumerate(clients):
                client.send_text(f"message {index}")
            for index, client in enumerate(clients):
                assert client.read_message() == f"message {index}"
        finally:
            for client in clients:
                client.close()
    print(f"\n32 WebSockets over 4 workers: {sorted(pids.count(pid) for pid in set(pids))}")
    assert len(set(pids)) == 4
    assert max(pids.count(pid) for pid in set(pids)) <= 10


def test_a_full_pool_stops_accepting_until_a_websocket_closes() -> None:
    """With ``--worker-connections 2`` two open WebSockets fill the worker: a third client
    waits (unanswered) until one of them closes."""
    with gunicorn(APP, "--worker-connections", "2") as running:
        first, second = open_echo(running.port), open_echo(running.port)
        third = RawClient(running.port, timeout=0.5)
        third.send_raw(third.request_bytes("/echo"))
        with pytest.raises(socket.timeout):
            third.read_response()
        # The first client ends its WebSocket (its Close, the server's, both FINs): the
        # handler greenlet ends and its pool slot frees.
        first.send_close(1000)
        assert first.read_until_close().close_code == 1000
        assert first.expect_eof() == b""
        first.close()
        third.sock.settimeout(5)
        assert third.read_response().status == 101
        for client in (first, second, third):
            client.close()


# ---------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, str, str]:
    """A throw-away CA and a certificate for 127.0.0.1, as PEM files."""
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    directory = tmp_path_factory.mktemp("tls")
    certfile, keyfile = directory / "cert.pem", directory / "key.pem"
    leaf.cert_chain_pems[0].write_to_path(str(certfile))
    leaf.private_key_pem.write_to_path(str(keyfile))
    return ca, str(certfile), str(keyfile)


def test_wss_with_certfile_and_keyfile(certificate: tuple[trustme.CA, str, str]) -> None:
    """``--certfile/--keyfile``: wss:// echoes, the environ says https, and SIGTERM sends
    1001 over TLS."""
    ca, certfile, keyfile = certificate
    client_context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(client_context)
    with gunicorn(APP, "--certfile", certfile, "--keyfile", keyfile) as running:
        url = f"wss://127.0.0.1:{running.port}"
        with connect(f"{url}/echo", ssl=client_context, open_timeout=5) as ws:
            ws.send("over tls")
            assert ws.recv(timeout=5) == "over tls"
        with connect(f"{url}/environ", ssl=client_context, open_timeout=5) as ws:
            assert json.loads(ws.recv(timeout=5))["wsgi.url_scheme"] == "https"
        running.wait_for_line(lambda line: '"GET /echo HTTP/1.1" 101 ' in line)

        gevent_context = gevent.ssl.SSLContext(gevent.ssl.PROTOCOL_TLS_CLIENT)
        ca.configure_trust(gevent_context)
        client = RawClient(running.port)
        client.sock = gevent_context.wrap_socket(client.sock, server_hostname="127.0.0.1")
        assert client.handshake("/echo").status == 101
        running.signal(signal.SIGTERM)
        assert answer_close(client).close_code == GOING_AWAY
        client.close()
        assert running.wait(timeout=15) == 0
    assert_quiet(running)


def test_wss_client_sees_going_away_with_websockets_client(
    certificate: tuple[trustme.CA, str, str],
) -> None:
    """The ``websockets`` client over wss:// sees a clean close with 1001 on SIGTERM."""
    ca, certfile, keyfile = certificate
    client_context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(client_context)
    with gunicorn(APP, "--certfile", certfile, "--keyfile", keyfile) as running:
        with connect(
            f"wss://127.0.0.1:{running.port}/echo", ssl=client_context, open_timeout=5
        ) as ws:
            running.signal(signal.SIGTERM)
            with pytest.raises(ConnectionClosedOK):
                ws.recv(timeout=10)
            assert ws.close_code == GOING_AWAY
        assert running.wait(timeout=15) == 0


# ---------------------------------------------------------------------- drain


def _raise_file_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"needs {needed} open files, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


DRAIN_CONNECTIONS = 1000
DRAIN_GRACEFUL_TIMEOUT = 20


def test_drain_1000_websockets_on_sigterm() -> None:
    """1,000 WebSockets on one worker, then SIGTERM: all 1,000 clients get Close 1001 and
    gunicorn exits 0 within ``graceful_timeout``. The clients are greenlets of this process
    (one hub, 1,000 sockets); each answers the Close and waits for the server's EOF."""
    _raise_file_limit(DRAIN_CONNECTIONS * 2 + 200)
    with gunicorn(
        APP,
        "--worker-connections",
        str(DRAIN_CONNECTIONS + 100),
        "--graceful-timeout",
        str(DRAIN_GRACEFUL_TIMEOUT),
        access_log=False,
    ) as running:
        clients: list[RawClient] = []
        connect_started = time.monotonic()
        opener = Pool(100)
        try:
            for client in opener.imap_unordered(
                lambda _: open_echo(running.port, timeout=DRAIN_GRACEFUL_TIMEOUT),
                range(DRAIN_CONNECTIONS),
            ):
                clients.append(client)
            connected = time.monotonic() - connect_started
            codes: list[int | None] = []
            eofs: list[bool] = []

            def drain(client: RawClient) -> None:
                close = client.read_until_close()
                codes.append(close.close_code)
                client.send_close(close.close_code or 1000)
                eofs.append(client.expect_eof(timeout=DRAIN_GRACEFUL_TIMEOUT) == b"")
                client.close()

            drainers = [gevent.spawn(drain, client) for client in clients]
            status, elapsed = timed_exit(running, signal.SIGTERM, DRAIN_GRACEFUL_TIMEOUT + 5)
            gevent.joinall(drainers, timeout=DRAIN_GRACEFUL_TIMEOUT, raise_error=True)
        finally:
            for client in clients:
                client.close()
    (summary,) = running.wait_for_line(lambda line: "WebSocket connection(s) closed in" in line)
    print(
        f"\ndrain: {len(clients)} WebSockets connected in {connected:.2f} s; after SIGTERM "
        f"{codes.count(GOING_AWAY)} got Close 1001, {sum(eofs)} saw the server's EOF; gunicorn "
        f"exited {status} after {elapsed:.3f} s (graceful_timeout {DRAIN_GRACEFUL_TIMEOUT} s); "
        f"worker: {summary.split('] ', 3)[-1].strip()}"
    )
    assert len(clients) == DRAIN_CONNECTIONS
    assert codes == [GOING_AWAY] * DRAIN_CONNECTIONS
    assert eofs == [True] * DRAIN_CONNECTIONS
    assert status == 0
    assert elapsed < DRAIN_GRACEFUL_TIMEOUT
    assert f"{DRAIN_CONNECTIONS} of {DRAIN_CONNECTIONS} WebSocket" in summary
    assert_quiet(running)
