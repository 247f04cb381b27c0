"""The chat example in a real browser: headless Debian Chromium, driven by playwright-core.

Each test serves ``examples/chat_server.py`` (as its own process, or under gunicorn with the
geventws worker) and runs ``tests/browser/chat.mjs``, which opens the page in two tabs, sends a
line from each and reports as JSON what both tabs showed. ``tests/browser/install.sh`` runs
once per session first: it installs Debian's ``chromium`` package and the pinned
``playwright-core`` (neither is covered by ``pip install -e '.[test]'``); a failed install fails
the tests rather than skipping them.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import pytest

ROOT = Path(__file__).resolve().parent.parent
BROWSER = ROOT / "tests" / "browser"
INSTALL = BROWSER / "install.sh"
CHAT_JS = BROWSER / "chat.mjs"
CHAT_SERVER = ROOT / "examples" / "chat_server.py"

#: install.sh's limit: a first install fetches Chromium with apt-get; later runs take < 1 s.
INSTALL_TIMEOUT = 600
#: chat.mjs's limit: browser start, two tabs, two round trips (each step bounded at 10 s inside).
CHAT_TIMEOUT = 60
#: Until a server prints its banner, or gunicorn's worker answers GET /.
START_TIMEOUT = 20
#: Until a server exits after SIGTERM.
STOP_TIMEOUT = 15
#: Each test's own limit (pytest-timeout), as a backstop: the first test also pays the install.
TEST_TIMEOUT = INSTALL_TIMEOUT + CHAT_TIMEOUT + START_TIMEOUT + STOP_TIMEOUT + 60

BANNER = re.compile(r"chat on (https?)://127\.0\.0\.1:(\d+)/")

pytestmark = pytest.mark.timeout(TEST_TIMEOUT)


@pytest.fixture(scope="session")
def browser_installed() -> None:
    """Run ``tests/browser/install.sh`` once; fail (never skip) with its output if it fails."""
    try:
        result = subprocess.run(
            ["bash", str(INSTALL)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            env={**os.environ, "CI": "true"},
        )
    except subprocess.TimeoutExpired as timeout:
        pytest.fail(f"{INSTALL} did not finish within {INSTALL_TIMEOUT} s:\n{timeout.output}")
    if result.returncode != 0:
        pytest.fail(f"{INSTALL} exited {result.returncode}:\n{result.stdout}{result.stderr}")
    if shutil.which("node") is None:
        pytest.fail("node is not on PATH (install.sh found it; the test's PATH differs)")


@dataclass
class Server:
    """A server process started by a test, and where its output goes."""

    process: subprocess.Popen[str]
    log: Path
    url: str = ""

    def output(self) -> str:
        """What the server wrote to its log so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> int:
        """SIGTERM, then wait (bounded); return the exit code. Kills it if it will not stop."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
            raise AssertionError(
                f"the server did not stop within {STOP_TIMEOUT} s of SIGTERM:\n{self.output()}"
            ) from None


@contextmanager
def running(argv: list[str], log: Path, *, stdout: int | None = None) -> Iterator[Server]:
    """Start ``argv`` with stderr (and stdout unless piped) into ``log``; stop it afterwards."""
    with log.open("w") as log_file:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log_file if stdout is None else stdout,
            stderr=log_file,
            text=True,
            cwd=ROOT,
        )
    server = Server(process, log)
    try:
        yield server
    finally:
        if process.poll() is None:
            server.stop()
        if process.stdout is not None:
            process.stdout.close()


def read_banner(server: Server, stdout: TextIO) -> tuple[str, int]:
    """Wait (bounded) for the chat example's banner line; return its scheme and port."""
    ready, _, _ = select.select([stdout], [], [], START_TIMEOUT)
    banner = stdout.readline() if ready else ""
    match = BANNER.search(banner)
    if match is None:
        try:
            code = server.process.wait(timeout=1)  # an end of output is usually an exit
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"no banner within {START_TIMEOUT} s (got {banner!r}):\n{server.output()}"
            ) from None
        raise AssertionError(
            f"the server exited {code} without its banner (got {banner!r}):\n{server.output()}"
        )
    return match.group(1), int(match.group(2))


@contextmanager
def chat_example(tmp_path: Path, *args: str) -> Iterator[Server]:
    """Run ``examples/chat_server.py --port 0 ARGS``; yield it with ``url`` from its banner."""
    argv = [sys.executable, str(CHAT_SERVER), "--port", "0", *args]
    with running(argv, tmp_path / "chat_server.log", stdout=subprocess.PIPE) as server:
        assert server.process.stdout is not None
        scheme, port = read_banner(server, server.process.stdout)
        server.url = f"{scheme}://127.0.0.1:{port}/"
        yield server


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago (bound to 0, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_page(server: Server, url: str) -> None:
    """Poll ``url`` (bounded) until it answers 200; fail at once if the server exits."""
    deadline = time.monotonic() + START_TIMEOUT
    last: object = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
                last = response.status
        except OSError as error:  # refused, reset, timed out, or an HTTP error status
            last = error
        try:
            # Paces the polling, and notices a server that died.
            code = server.process.wait(timeout=0.1)
        except subprocess.TimeoutExpired:
            continue
        raise AssertionError(f"the server exited {code} before serving {url}:\n{server.output()}")
    raise AssertionError(
        f"{url} did not answer 200 within {START_TIMEOUT} s (last: {last!r}):\n{server.output()}"
    )


def run_chat_js(url: str, *options: str) -> dict[str, Any]:
    """Run ``tests/browser/chat.mjs URL OPTIONS``; return its JSON report after checking it."""
    argv = ["node", str(CHAT_JS), url, *options]
    try:
        result = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=CHAT_TIMEOUT,
            cwd=BROWSER,
        )
    except subprocess.TimeoutExpired as timeout:
        raise AssertionError(
            f"chat.mjs did not finish within {CHAT_TIMEOUT} s:\n{timeout.stdout!r}\n"
            f"{timeout.stderr!r}"
        ) from None
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 0, (
        f"chat.mjs exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    )
    assert lines, f"chat.mjs printed nothing on stdout:\n{result.stderr}"
    report: dict[str, Any] = json.loads(lines[-1])
    print(json.dumps(report, ensure_ascii=False, indent=2))  # shown with -s or -rP
    return report


def assert_both_tabs_saw_both_lines(report: dict[str, Any], url: str) -> None:
    """Both tabs: connected, and exactly the line tab 1 sent, then the one tab 2 sent back."""
    assert report["ok"] is True, report
    assert report["url"] == url
    sent = report["sent"]
    assert [line["from"] for line in sent] == ["tab1", "tab2"]
    first, second = (line["line"] for line in sent)
    assert first.startswith("ada: héllo from tab 1 ✓ ")
    assert second.startswith("bob: and back from tab 2 <b>")
    for tab in ("tab1", "tab2"):
        shown = report["tabs"][tab]
        assert shown["status"] == "connected", (tab, shown)
        assert shown["messages"] == [first, second], (tab, shown)


def test_chat_in_two_browser_tabs(browser_installed: None, tmp_path: Path) -> None:
    """Over ws://, Chromium's own WebSocket client connects from two tabs, a line sent in one
    tab is shown in both (and the reply likewise), and the example then stops with exit 0."""
    with chat_example(tmp_path) as server:
        assert server.url.startswith("http://")
        report = run_chat_js(server.url)
        exit_code = server.stop()
    assert_both_tabs_saw_both_lines(report, server.url)
    assert exit_code == 0, server.output()


def test_chat_in_two_browser_tabs_over_tls(browser_installed: None, tmp_path: Path) -> None:
    """The same over https:// and wss:// (a trustme certificate; Chromium told to ignore that
    it is untrusted): TLS-wrapped upgrades and frames work for a real browser."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    certfile.write_bytes(b"".join(pem.bytes() for pem in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(keyfile))
    args = ("--certfile", str(certfile), "--keyfile", str(keyfile))
    with chat_example(tmp_path, *args) as server:
        assert server.url.startswith("https://"), server.url
        report = run_chat_js(server.url, "--ignore-certificate-errors")
        exit_code = server.stop()
    assert_both_tabs_saw_both_lines(report, server.url)
    assert exit_code == 0, server.output()


def test_chat_in_two_browser_tabs_under_gunicorn(browser_installed: None, tmp_path: Path) -> None:
    """The chat's WSGI ``app`` served by gunicorn with the geventws worker (one worker): the
    page loads, both tabs connect and see both lines, and gunicorn stops with exit 0."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "--worker-class",
        "geventws.gunicorn.Worker",
        "--workers",
        "1",
        "--bind",
        f"127.0.0.1:{port}",
        "--chdir",
        str(ROOT),
        "--graceful-timeout",
        "5",
        "--log-level",
        "warning",
        "examples.chat_server:app",
    ]
    with running(argv, tmp_path / "gunicorn.log") as server:
        wait_for_page(server, url)
        report = run_chat_js(url)
        exit_code = server.stop()
    assert_both_tabs_saw_both_lines(report, url)
    assert exit_code == 0, server.output()
