"""Running real gunicorn (with geventws's worker) in a subprocess, for the tests.

:func:`gunicorn` starts ``python -m gunicorn`` on a free port of 127.0.0.1 in the repository
root, waits until every worker has booted and the port answers, and stops it (by its pid, with
the signal given) afterwards. What gunicorn writes to its error and access logs is collected
line by line in a thread, so a test can wait for a line with a bound.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER_CLASS = "geventws.gunicorn.Worker"


def free_port() -> int:
    """A port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Gunicorn:
    """A running gunicorn: its process, port, and the log lines seen so far."""

    process: subprocess.Popen[str]
    port: int
    lines: list[str] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _reading: bool = True

    def wait_for_line(
        self, predicate: Callable[[str], bool], timeout: float = 15.0, count: int = 1
    ) -> list[str]:
        """Block until ``count`` log lines satisfy ``predicate``; fail after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [line for line in self.lines if predicate(line)]
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.process.poll() is not None and not self._reading):
                    raise AssertionError(
                        f"no log line matched within {timeout} s; gunicorn said:\n"
                        + "".join(self.lines[-60:])
                    )
                self._changed.wait(min(remaining, 0.5))

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the gunicorn master (the process this test started)."""
        self.process.send_signal(signum)

    def wait(self, timeout: float = 30.0) -> int:
        """Wait for gunicorn to exit; return its exit status."""
        return self.process.wait(timeout=timeout)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._reading = False
            self._changed.notify_all()


def _control_socket_args() -> list[str]:
    """``--no-control-socket`` where gunicorn has one (27+): every master would otherwise
    listen on the same ``~/.gunicorn/gunicorn.ctl``, and tests run several at once."""
    from gunicorn.config import KNOWN_SETTINGS

    names = {setting.name for setting in KNOWN_SETTINGS}
    return ["--no-control-socket"] if "control_socket_disable" in names else []


def gunicorn_command(
    app: str,
    *args: str,
    port: int,
    workers: int = 1,
    worker_class: str = WORKER_CLASS,
    access_log: bool = True,
) -> list[str]:
    """The command line :func:`gunicorn` runs (the error log, and the access log unless
    ``access_log`` is False, go to stdout/stderr)."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--chdir",
        REPOSITORY,
        "-k",
        worker_class,
        "-w",
        str(workers),
        *(["--access-logfile", "-"] if access_log else []),
        "--error-logfile",
        "-",
        "--log-level",
        "info",
        *_control_socket_args(),
        *args,
        app,
    ]


@contextmanager
def gunicorn(
    app: str,
    *args: str,
    workers: int = 1,
    worker_class: str = WORKER_CLASS,
    stop_signal: int = signal.SIGTERM,
    boot_timeout: float = 30.0,
    env: dict[str, str] | None = None,
    access_log: bool = True,
) -> Iterator[Gunicorn]:
    """Run ``gunicorn -k <worker_class> -w <workers> <args> <app>`` bound to a free port.

    The access log (unless ``access_log`` is False) goes to stdout and the error log to
    stderr, both collected into :attr:`Gunicorn.lines`. Yields once all workers have booted
    and the port accepts TCP. On exit the master gets ``stop_signal`` (if still running) and
    must end in 30 s.
    """
    port = free_port()
    command = gunicorn_command(
        app, *args, port=port, workers=workers, worker_class=worker_class, access_log=access_log
    )
    process = subprocess.Popen(
        command,
        cwd=REPOSITORY,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    running = Gunicorn(process, port)
    reader = threading.Thread(target=running._read, daemon=True)
    reader.start()
    try:
        running.wait_for_line(lambda line: "Booting worker" in line, boot_timeout, workers)
        _wait_for_port(port, boot_timeout)
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(stop_signal)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
                raise AssertionError("gunicorn did not stop within 30 s") from None
        reader.join(timeout=10)


def _wait_for_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"gunicorn never accepted on port {port}") from None
            threading.Event().wait(0.05)  # the port is not ours to wait on; poll it
