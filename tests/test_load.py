"""Load and soak tests: examples/echo_server.py under thousands of connections.

The server runs as its own process (on a free port on 127.0.0.1), and so does the client,
tests/load_client.py (one epoll loop, its own frame code): every echo is checked byte for byte
and in order, every connection ends with the closing handshake. The server is watched from
outside through /proc: its open sockets (back to the listening socket alone once every client
is gone) and its resident memory (flat from one wave of connections to the next).

Both processes get their open-file limit raised to the hard limit; with a hard limit too low for
5,000 connections the tests use as many as it allows (and print the number).
Run with ``pytest tests/test_load.py -s`` (or ``-rP``) to see the figures.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
ECHO_SERVER = ROOT / "examples" / "echo_server.py"
LOAD_CLIENT = ROOT / "tests" / "load_client.py"
MIB = 1024 * 1024
#: Descriptors each process needs besides its connections (listener, epoll, stdio, imports).
SPARE_FDS = 200
WANTED_CONNECTIONS = 5000


def nofile_limit() -> int:
    """The open-file limit the server and the client can get: our hard limit."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY:
        hard = int(Path("/proc/sys/fs/nr_open").read_text())
    return hard


def connection_count(server: EchoServer) -> int:
    """5,000, or as many as the server's and the client's open-file limits allow."""
    limit = min(server.open_file_limit(), nofile_limit())
    count = min(WANTED_CONNECTIONS, limit - SPARE_FDS)
    print(
        f"open-file limits: server {server.open_file_limit()}, client {nofile_limit()}: "
        f"{count} connections at once"
    )
    return count


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    """Poll ``predicate`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


class EchoServer:
    """examples/echo_server.py as a child process, observed through /proc."""

    def __init__(self, process: subprocess.Popen[str], port: int, stderr_path: Path) -> None:
        self.process = process
        self.pid = process.pid
        self.port = port
        self.stderr_path = stderr_path
        self.listening_sockets = self.sockets()

    def status(self, field: str) -> int:
        """A number from /proc/PID/status (``VmRSS`` and ``VmHWM`` in KiB, ``Threads``)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise AssertionError(f"no {field} in /proc/{self.pid}/status")

    def open_file_limit(self) -> int:
        """The server's (soft) limit on open files."""
        for line in Path(f"/proc/{self.pid}/limits").read_text().splitlines():
            if line.startswith("Max open files"):
                return int(line.split()[3])
        raise AssertionError(f"no open-file limit in /proc/{self.pid}/limits")

    def rss(self) -> int:
        """Resident memory, in bytes."""
        return self.status("VmRSS") * 1024

    def peak_rss(self) -> int:
        """Peak resident memory (since start or :meth:`reset_peak_rss`), in bytes."""
        return self.status("VmHWM") * 1024

    def reset_peak_rss(self) -> None:
        """Restart the peak from the current size (where /proc allows it; else it stays the
        peak since start, which checks the same bound)."""
        with contextlib.suppress(OSError):
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")

    def sockets(self) -> int:
        """How many sockets the server has open."""
        count = 0
        for fd in os.listdir(f"/proc/{self.pid}/fd"):
            try:
                if os.readlink(f"/proc/{self.pid}/fd/{fd}").startswith("socket:"):
                    count += 1
            except OSError:
                pass  # closed meanwhile
        return count

    def check_alive(self) -> None:
        assert self.process.poll() is None, (
            f"the echo server died with {self.process.returncode}: {self.stderr_tail()}"
        )

    def wait_idle(self, timeout: float = 20.0) -> None:
        """Wait until the server holds only its listening socket again."""
        self.check_alive()
        wait_for(
            lambda: self.sockets() <= self.listening_sockets,
            timeout,
            f"the server's sockets to go back to {self.listening_sockets} (has {self.sockets()})",
        )

    def stderr_tail(self) -> str:
        return self.stderr_path.read_text(errors="replace")[-4000:]

    def figures(self) -> str:
        return (
            f"RSS {self.rss() / MIB:.1f} MiB (peak {self.peak_rss() / MIB:.1f} MiB), "
            f"{self.sockets()} sockets, {self.status('Threads')} threads"
        )


@contextmanager
def echo_server(tmp_path: Path, *args: str) -> Iterator[EchoServer]:
    """Start examples/echo_server.py on a free port with the open-file limit raised."""
    stderr_path = tmp_path / "echo_server.stderr"
    with open(stderr_path, "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, str(ECHO_SERVER), "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    succeeded = False
    try:
        limit = nofile_limit()
        try:
            resource.prlimit(process.pid, resource.RLIMIT_NOFILE, (limit, limit))
        except OSError as error:  # then the tests use as many connections as the server can
            print(f"could not raise the server's open-file limit to {limit}: {error}")
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 30)
        banner = process.stdout.readline() if ready else ""
        assert banner.startswith("echo server listening on "), (
            f"no banner: {banner!r} {stderr_path.read_text()}"
        )
        port = int(banner.rstrip().rstrip("/").rsplit(":", 1)[1])
        server = EchoServer(process, port, stderr_path)
        print(f"echo server pid {process.pid} port {port}: {server.figures()}")
        yield server
        succeeded = True
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
            code = None
        if process.stdout is not None:
            process.stdout.close()
        log = stderr_path.read_text(errors="replace")
        if log:
            print(f"echo server stderr:\n{log[-4000:]}")
        if succeeded:
            assert code == 0, f"the echo server did not stop cleanly on SIGTERM: {code}"
            assert "Traceback" not in log, log[-4000:]


def run_client(mode: str, port: int, *args: str, deadline: float) -> dict[str, Any]:
    """Run tests/load_client.py to completion (it stops by itself by ``deadline``)."""
    command = [sys.executable, str(LOAD_CLIENT), mode, "--port", str(port)]
    command += [*args, "--deadline", str(deadline)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=deadline + 30)
    lines = result.stdout.strip().splitlines()
    assert lines, f"no report from the load client ({result.returncode}): {result.stderr}"
    report: dict[str, Any] = json.loads(lines[-1])
    report["exit_code"] = result.returncode
    print(f"load client {mode} {' '.join(args)}:\n  {json.dumps(report)}")
    return report


def assert_clean(report: dict[str, Any], connections: int) -> None:
    """Every connection opened, echoed everything intact and in order, and closed cleanly."""
    failures = {
        key: report[key]
        for key in ("handshake_failures", "errors", "lost", "reordered", "corrupted")
        if report[key]
    }
    assert not failures, f"{failures}; samples: {report['error_samples']}"
    assert not report["timed_out"], report
    assert report["opened"] == connections, report
    assert report["closed_clean"] == connections, report
    assert report["echoed"] == report["sent"] > 0, report
    assert report["exit_code"] == 0, report


@pytest.mark.timeout(180)
def test_load_5000_concurrent_connections_echo_everything_in_order(tmp_path):
    duration = 12
    with echo_server(tmp_path) as server:
        connections = connection_count(server)
        rss_before = server.rss()
        report = run_client(
            "soak",
            server.port,
            "--connections",
            str(connections),
            "--duration",
            str(duration),
            "--depth",
            "4",
            deadline=120,
        )
        server.check_alive()
        server.wait_idle()
        rss_after = server.rss()
        print(
            f"soak: {report['opened']} connections (all open at once: "
            f"{report['open_at_steady_start']}), ramp {report['ramp_seconds']} s, "
            f"{report['sent']} messages sent, {report['echoed']} echoed "
            f"({report['echoes_per_second']}/s; per connection "
            f"{report['min_echoes_per_connection']}..{report['max_echoes_per_connection']}), "
            f"{report['big_messages']} large; lost {report['lost']}, reordered "
            f"{report['reordered']}, corrupted {report['corrupted']}, errors {report['errors']}; "
            f"server RSS {rss_before / MIB:.1f} -> {rss_after / MIB:.1f} MiB; "
            f"{server.figures()}"
        )
        assert_clean(report, connections)
        assert report["peak_open"] == report["open_at_steady_start"] == connections, report
        # Every connection had its pipeline of 4 answered at least once over.
        assert report["min_echoes_per_connection"] >= 4, report


@pytest.mark.timeout(180)
def test_load_memory_flat_after_disconnect(tmp_path):
    """Identical waves of connections (each sends 16 messages, 2 in flight), one after the
    other: after a warm-up wave, whatever a wave leaves behind must not add to what the next
    one needs.

    The resident size right after a wave is not comparable from one wave to the next: the
    example's listener (``connection.send``, a method of the connection) makes each closed
    connection a reference cycle that only the cyclic GC frees, whenever it runs, and glibc
    gives memory back only from the top of its heap; on the development machine it varied by
    up to 40 MiB between identical waves. The peak of a wave is stable (within about 1 MiB
    from wave to wave once warm), and memory kept past disconnect would come on top of it: so
    the second wave's peak, and the resident size after it, are checked against the first
    wave's peak.
    """
    with echo_server(tmp_path) as server:
        connections = connection_count(server)
        wave = ("--connections", str(connections), "--messages", "16", "--depth", "2")
        wave += ("--duration", "40")  # a bound only: the 16 messages take a few seconds
        rss_start = server.rss()
        reports, rss, peaks = [], [], []
        for _ in range(3):  # warm-up, first, second
            server.reset_peak_rss()
            reports.append(run_client("soak", server.port, *wave, deadline=90))
            server.wait_idle()
            rss.append(server.rss())
            peaks.append(server.peak_rss())
        print(
            f"memory: {connections} connections per wave; messages "
            f"{', '.join(str(report['echoed']) for report in reports)}; server RSS at start "
            f"{rss_start / MIB:.1f} MiB; peak and after each wave (warm-up, first, second): "
            + ", ".join(f"{p / MIB:.1f}/{r / MIB:.1f}" for p, r in zip(peaks, rss, strict=True))
            + f" MiB; second - first: peak {(peaks[2] - peaks[1]) / MIB:+.1f} MiB, after "
            f"{(rss[2] - rss[1]) / MIB:+.1f} MiB; {server.figures()}"
        )
        for report in reports:
            assert_clean(report, connections)
        # 8 MiB over 5,000 connections: a leak of 1.7 KB per connection would show.
        assert peaks[2] <= peaks[1] + 8 * MIB, (
            f"the second wave needed {(peaks[2] - peaks[1]) / MIB:.1f} MiB more than the first"
        )
        assert rss[2] <= peaks[1] + 8 * MIB, (
            f"after the second wave the server holds {rss[2] / MIB:.1f} MiB, "
            f"over the first wave's peak {peaks[1] / MIB:.1f} MiB"
        )


@pytest.mark.timeout(180)
def test_load_churn_leaves_no_sockets_and_no_memory_behind(tmp_path):
    warmup, rest, concurrency = 5000, 15000, 50
    churn = ("--concurrency", str(concurrency))
    with echo_server(tmp_path) as server:
        rss_start = server.rss()
        first = run_client("churn", server.port, "--total", str(warmup), *churn, deadline=90)
        server.wait_idle()
        rss_warm, peak_warm = server.rss(), server.peak_rss()
        threads_warm = server.status("Threads")
        server.reset_peak_rss()
        second = run_client("churn", server.port, "--total", str(rest), *churn, deadline=120)
        server.wait_idle()
        rss_end, peak_end = server.rss(), server.peak_rss()
        growth = rss_end - rss_warm
        print(
            f"churn: {first['opened']} + {second['opened']} connections opened, echoed once and "
            f"closed, {concurrency} at a time, in {first['elapsed']} + {second['elapsed']} s "
            f"({second['opened'] / max(second['elapsed'], 1e-9):.0f}/s); errors "
            f"{first['errors'] + second['errors']}; server sockets "
            f"{server.sockets()} (listening: {server.listening_sockets}); RSS at start "
            f"{rss_start / MIB:.1f} MiB, after {warmup} {rss_warm / MIB:.1f} MiB (peak "
            f"{peak_warm / MIB:.1f}), after {warmup + rest} {rss_end / MIB:.1f} MiB "
            f"({growth / MIB:+.1f} MiB; peak {peak_end / MIB:.1f}); "
            f"{server.figures()}"
        )
        assert_clean(first, warmup)
        assert_clean(second, rest)
        assert first["peak_open"] <= concurrency and second["peak_open"] <= concurrency
        assert server.sockets() == server.listening_sockets
        assert server.status("Threads") <= threads_warm
        # 15,000 more connections: a leak of 600 bytes per connection would show as 8 MiB.
        assert growth <= 8 * MIB, f"server RSS grew {growth / MIB:.1f} MiB over 15,000 churns"
        assert peak_end <= peak_warm + 8 * MIB, (
            f"peak RSS grew {(peak_end - peak_warm) / MIB:.1f} MiB over 15,000 churns"
        )
