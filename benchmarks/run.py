#!/usr/bin/env python3
"""The geventws benchmark suite: geventws against websockets, gevent-websocket and
WebSocket-Node, each an echo server driven by the same C load generator.

    python3 benchmarks/run.py [--rounds 5] [--seconds 3] [--scenarios echo-small,...]
                              [--servers geventws,websockets,...] [--json out.json]

Standard library only. On first use it builds everything in benchmarks/.work/ (gitignored):
a virtualenv with geventws (``pip install -e`` of this checkout), websockets and
gevent-websocket; WebSocket-Node with npm; the load generator with gcc. Each measurement
starts a fresh server pinned to core 0 (``taskset -c 0``) and runs the load generator pinned
to core 1; within every round each scenario runs all servers back to back, in an order that
rotates from round to round. It prints, per scenario, the median over the rounds for each
server and the ratio geventws/peer, from this one run. ``--servers ...,c-reference`` adds a
plain C server (servers/c_reference.c, one send() per frame) as a yardstick, not a peer.
See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import json
import os
import platform
import resource
import select
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
SERVERS_DIR = BENCH / "servers"

PYTHON_REQUIREMENTS = [
    "websockets==17.4; python_version >= '3.11'",
    "websockets==16.1.1; python_version < '3.11'",  # 17 needs Python 3.11
    "gevent-websocket==0.10.1",
]
NPM_PACKAGE = "websocket@1.0.35"

SERVER_CORE = "0"
LOAD_CORE = "1"
IDLE_CONNECTIONS = 10_000
BROADCAST_CONNECTIONS = 1_000

ALL_SERVERS = ["geventws", "websockets", "gevent-websocket", "websocket-node"]
#: Not a peer, only on request (--servers ...,c-reference): a plain C server, one send() per
#: frame (servers/c_reference.c), to show what this machine allows in each scenario.
REFERENCE_SERVERS = ["c-reference"]
KNOWN_SERVERS = ALL_SERVERS + REFERENCE_SERVERS
PYTHON_SERVERS = {"geventws", "websockets", "gevent-websocket"}

#: --keep-freed-memory: glibc's malloc told (through its environment variables) to keep
#: freed memory mapped instead of handing the top of its heap back to the kernel after every
#: big message and faulting it in again for the next (see benchmarks/README.md, fifth pass).
#: Given to every Python server alike; Node manages its own heap.
KEEP_FREED_MEMORY = {
    "MALLOC_TRIM_THRESHOLD_": str(256 << 20),
    "MALLOC_MMAP_THRESHOLD_": str(64 << 20),
}


@dataclass
class Scenario:
    name: str
    title: str
    metric: str  # the key of the headline number in the result
    unit: str
    higher_is_better: bool = True
    extra: list[str] = field(default_factory=list)  # further columns (medians)


SCENARIOS = {
    s.name: s
    for s in [
        Scenario(
            "echo-small",
            "64 connections, 32-byte text, 1 in flight each",
            "messages_per_s",
            "messages/s",
            extra=["p50_us", "p99_us", "per_conn_min", "server_cpu", "client_cpu", "other_cpu"],
        ),
        Scenario(
            "echo-pipelined",
            "64 connections, 32-byte text, 16 in flight each",
            "messages_per_s",
            "messages/s",
            extra=["p50_us", "p99_us", "per_conn_min", "server_cpu", "client_cpu", "other_cpu"],
        ),
        Scenario(
            "echo-large",
            "8 connections, 1 MiB binary, 1 in flight each",
            "mb_per_s",
            "MB/s (echoed payload, one way)",
            extra=["p50_us", "p99_us", "per_conn_min", "server_cpu", "client_cpu", "other_cpu"],
        ),
        Scenario(
            "handshakes",
            "64 concurrent loops of connect, upgrade, one echo, close",
            "connections_per_s",
            "connections/s",
            extra=["p50_us", "p99_us", "server_cpu", "client_cpu", "other_cpu"],
        ),
        Scenario(
            "idle-conns",
            f"{IDLE_CONNECTIONS:,} idle connections, then one echo on each",
            "kib_per_conn",
            "KiB RSS per connection",
            higher_is_better=False,
            extra=[
                "rss_before_mib",
                "rss_after_mib",
                "kib_per_conn_after_echo",
                "open_seconds",
                "other_cpu",
            ],
        ),
        Scenario(
            "broadcast",
            f"{BROADCAST_CONNECTIONS:,} connections, one 32-byte text to all, repeated",
            "deliveries_per_s",
            "deliveries/s",
            extra=["p50_us", "p99_us", "server_cpu", "client_cpu", "other_cpu"],
        ),
    ]
}


# ---------------------------------------------------------------------- processes

_live: list[subprocess.Popen[Any]] = []
_ours: set[int] = {os.getpid()}  # processes of this suite, left out of the noise measure


def _stop(proc: subprocess.Popen[Any], timeout: float = 5.0) -> None:
    """Stop one process we started (by its pid): SIGTERM, then SIGKILL."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(5)
    if proc in _live:
        _live.remove(proc)


def stop_all() -> None:
    for proc in list(_live):
        _stop(proc, timeout=2.0)


def _on_signal(signum: int, _frame: Any) -> None:
    print(f"\ninterrupted ({signal.Signals(signum).name}); stopping what we started", flush=True)
    stop_all()
    raise SystemExit(128 + signum)


def run_checked(cmd: list[str], **kwargs: Any) -> None:
    print("+ " + " ".join(str(c) for c in cmd), flush=True)
    subprocess.run(cmd, check=True, **kwargs)


# ---------------------------------------------------------------------- set-up


def setup(work: Path, python: str) -> dict[str, str]:
    """Create (or reuse) the virtualenv, node_modules and load generator; return versions."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "logs").mkdir(exist_ok=True)
    venv = work / "venv"
    venv_python = venv / "bin" / "python"
    wanted = hashlib.sha256(
        "\n".join(
            [
                python,
                *PYTHON_REQUIREMENTS,
                (REPO / "pyproject.toml").read_text(),
                # pip install -e builds the C masker; a changed source needs a rebuild.
                (REPO / "geventws" / "_speedups.c").read_text(),
            ]
        ).encode()
    ).hexdigest()
    stamp = venv / ".geventws-bench-stamp"
    if not venv_python.exists() or not stamp.exists() or stamp.read_text() != wanted:
        if not venv_python.exists():
            run_checked([python, "-m", "venv", str(venv)])
        pip = [str(venv_python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        run_checked([*pip, "-e", str(REPO), *PYTHON_REQUIREMENTS])
        stamp.write_text(wanted)
    node_dir = work / "node"
    node_dir.mkdir(exist_ok=True)
    package = node_dir / "node_modules" / "websocket" / "package.json"
    wanted_npm = NPM_PACKAGE.split("@")[1]
    if not package.exists() or json.loads(package.read_text())["version"] != wanted_npm:
        if not (node_dir / "package.json").exists():
            (node_dir / "package.json").write_text('{"name": "geventws-bench", "private": true}\n')
        run_checked(
            ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", NPM_PACKAGE],
            cwd=node_dir,
        )
    for binary, source in [
        (work / "loadgen", BENCH / "loadgen.c"),
        (work / "c-reference", SERVERS_DIR / "c_reference.c"),
    ]:
        if not binary.exists() or binary.stat().st_mtime < source.stat().st_mtime:
            run_checked(["gcc", "-O2", "-Wall", "-Wextra", "-o", str(binary), str(source)])
    probe = (
        "import importlib.metadata as m, sys, platform;"
        "print(platform.python_version());"
        "[print(m.version(p)) for p in ('geventws', 'gevent', 'greenlet', 'websockets',"
        " 'gevent-websocket')];"
        "import geventws.masking as k; print('C' if k.accelerated_apply_mask else 'Python')"
    )
    out = subprocess.run(
        [str(venv_python), "-c", probe], check=True, capture_output=True, text=True
    ).stdout.split()
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    keys = ["python", "geventws", "gevent", "greenlet", "websockets", "gevent-websocket", "mask"]
    versions = dict(zip(keys, out, strict=True))
    versions["geventws masking"] = versions.pop("mask")
    versions["geventws"] += f" ({geventws_state()})"
    versions["node"] = node
    versions["websocket (npm)"] = wanted_npm
    return versions


def geventws_state() -> str:
    """The checkout's commit and a digest of the geventws/ sources there (the tree at HEAD plus
    any uncommitted change): the servers import geventws from this checkout, so a change
    during a run would mix versions."""
    git = ["git", "-C", str(REPO)]

    def out(*args: str) -> str:
        return subprocess.run([*git, *args], capture_output=True, text=True).stdout.strip()

    tree = out("rev-parse", "HEAD:geventws") + out("diff", "HEAD", "--", "geventws")
    digest = hashlib.sha256(tree.encode()).hexdigest()[:8]
    return f"{out('rev-parse', '--short', 'HEAD') or 'unknown commit'}, sources {digest}"


def server_command(name: str, work: Path, port: int) -> list[str]:
    python = str(work / "venv" / "bin" / "python")
    scripts = {
        "geventws": [python, str(SERVERS_DIR / "geventws_echo.py")],
        "websockets": [python, str(SERVERS_DIR / "websockets_echo.py")],
        "gevent-websocket": [python, str(SERVERS_DIR / "gevent_websocket_echo.py")],
        "websocket-node": ["node", str(SERVERS_DIR / "websocket_node_echo.js")],
        "c-reference": [str(work / "c-reference")],
    }
    return ["taskset", "-c", SERVER_CORE, *scripts[name], "--port", str(port)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """One echo server process, pinned to the server core, for one measurement."""

    def __init__(
        self, name: str, work: Path, log_name: str, extra_env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.port = free_port()
        self.log_path = work / "logs" / f"{log_name}.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115 (closed in stop())
        env = dict(os.environ, NODE_PATH=str(work / "node" / "node_modules"))
        env.update(extra_env or {})
        env.pop("PYTHONDEVMODE", None)
        env.pop("PYTHONASYNCIODEBUG", None)
        self.proc = subprocess.Popen(
            server_command(name, work, self.port),
            stdout=subprocess.PIPE,
            stderr=self.log,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=work,
        )
        _live.append(self.proc)
        _ours.add(self.proc.pid)
        self._wait_ready(30.0)

    def _wait_ready(self, timeout: float) -> None:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                line = self.proc.stdout.readline()
                if line.startswith(b"ready"):
                    break
                if not line:
                    break
            if self.proc.poll() is not None:
                break
        if not line.startswith(b"ready"):
            self.stop()
            raise RuntimeError(f"{self.name} did not start: {self.log_tail()}")
        with socket.create_connection(("127.0.0.1", self.port), timeout=5):
            pass

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        self.log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(text) or "(server log empty)"

    def stop(self) -> None:
        _stop(self.proc)
        self.log.close()


# ---------------------------------------------------------------------- measurements


def _process_ticks() -> dict[int, int]:
    """CPU ticks (user + system) of every process on the machine, by pid."""
    ticks = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks[int(entry.name)] = int(fields[11]) + int(fields[12])
    return ticks


class Noise:
    """How much CPU other processes (and the hypervisor, as steal) took during a measurement:
    the machine is shared, so a number taken next to a busy neighbour is marked as such."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.ticks = _process_ticks()
        self.steal = self._steal()

    @staticmethod
    def _steal() -> int:
        with open("/proc/stat") as f:
            return int(f.readline().split()[8])

    def result(self) -> dict[str, float]:
        ticks = _process_ticks()
        elapsed = time.monotonic() - self.t0
        hz = os.sysconf("SC_CLK_TCK")
        other = sum(t - self.ticks.get(pid, 0) for pid, t in ticks.items() if pid not in _ours)
        return {
            "other_cpu": round(max(other, 0) / hz / elapsed, 2),
            "steal": round((self._steal() - self.steal) / hz / elapsed, 2),
        }


def loadgen(work: Path, args: list[Any], timeout: float) -> dict[str, Any]:
    cmd = ["taskset", "-c", LOAD_CORE, str(work / "loadgen"), *map(str, args)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _live.append(proc)
    _ours.add(proc.pid)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop(proc)
        raise RuntimeError(f"load generator timed out after {timeout:.0f} s") from None
    finally:
        if proc in _live:
            _live.remove(proc)
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed ({proc.returncode}): {err.strip()}")
    return dict(json.loads(out.strip().splitlines()[-1]))


def measure(scenario: str, server: Server, work: Path, seconds: float) -> dict[str, Any]:
    noise = Noise()
    result = _measure(scenario, server, work, seconds)
    result.update(noise.result())
    return result


def wait_for_quiet(limit: float, max_wait: float) -> float:
    """Wait (at most ``max_wait`` s) until other processes use under ``limit`` cores over half
    a second; return what they used in the last sample."""
    deadline = time.monotonic() + max_wait
    while True:
        noise = Noise()
        time.sleep(0.5)
        other = noise.result()["other_cpu"]
        if other < limit or time.monotonic() >= deadline:
            return other


def _measure(scenario: str, server: Server, work: Path, seconds: float) -> dict[str, Any]:
    port = server.port
    if scenario == "idle-conns":
        return measure_idle(server, work)
    argv: list[Any] = {
        "echo-small": [port, 64, 32, 1, seconds],
        "echo-pipelined": [port, 64, 32, 16, seconds],
        "echo-large": [port, 8, 1 << 20, 1, seconds, "binary"],
        "handshakes": ["handshake", port, 64, seconds],
        "broadcast": ["broadcast", port, BROADCAST_CONNECTIONS, seconds],
    }[scenario]
    cpu0, t0 = server.cpu_seconds(), time.monotonic()
    result = loadgen(work, argv, timeout=seconds + 90)
    result["server_cpu"] = round((server.cpu_seconds() - cpu0) / (time.monotonic() - t0), 2)
    return result


def measure_idle(server: Server, work: Path) -> dict[str, Any]:
    # Warm up (first-connection imports, JIT, buffer pools), then let the server settle.
    loadgen(work, [server.port, 16, 32, 1, 1.0], timeout=60)
    time.sleep(1.0)
    before = server.rss_kib()
    cmd = ["taskset", "-c", LOAD_CORE, work / "loadgen", "idle", server.port]
    cmd.append(IDLE_CONNECTIONS)
    proc = subprocess.Popen(
        list(map(str, cmd)),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _live.append(proc)
    _ours.add(proc.pid)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        ready, _, _ = select.select([proc.stdout], [], [], 180)
        line = proc.stdout.readline() if ready else ""
        if not line.startswith('{"event": "open"'):
            _stop(proc)
            raise RuntimeError(f"idle: connections did not open: {line!r} {proc.stderr.read()}")
        time.sleep(2.0)  # let the server finish its bookkeeping for the last connections
        after = server.rss_kib()
        proc.stdin.write("verify\n")
        proc.stdin.flush()
        ready, _, _ = select.select([proc.stdout], [], [], 90)
        line = proc.stdout.readline() if ready else ""
        if not line.startswith('{"mode": "idle"'):
            _stop(proc)
            raise RuntimeError(f"idle: the verify step failed: {line!r} {proc.stderr.read()}")
        time.sleep(1.0)
        after_echo = server.rss_kib()
        proc.stdin.write("close\n")
        proc.stdin.flush()
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        _stop(proc)
        raise RuntimeError("idle: the load generator did not finish") from None
    finally:
        if proc in _live:
            _live.remove(proc)
    if proc.returncode != 0:
        raise RuntimeError(f"idle: load generator failed ({proc.returncode}): {err.strip()}")
    result = dict(json.loads(line))
    if result["echoed"] != IDLE_CONNECTIONS:
        raise RuntimeError(f"idle: only {result['echoed']} connections echoed")
    result.update(
        rss_before_mib=round(before / 1024, 1),
        rss_after_mib=round(after / 1024, 1),
        kib_per_conn=round((after - before) / IDLE_CONNECTIONS, 2),
        kib_per_conn_after_echo=round((after_echo - before) / IDLE_CONNECTIONS, 2),
    )
    return result


# ---------------------------------------------------------------------- report


def fmt(value: float | None) -> str:
    if value is None:
        return "FAILED"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def medians(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if key in r]
    return statistics.median(values) if values else None


def per_cpu(run: dict[str, Any], metric: str) -> float | None:
    """The headline per second of server CPU: less sensitive to a busy neighbour on the
    server's core than the wall-clock rate (the server then gets less than a whole core)."""
    cpu = run.get("server_cpu")
    if not cpu or cpu < 0.05 or metric not in run:
        return None
    return float(run[metric]) / float(cpu)


def ratio(a: float | None, b: float | None) -> str:
    return "FAILED" if a is None or not b else f"{a / b:.2f}x"


def report(
    results: dict[str, dict[str, list[dict[str, Any]]]],
    failures: list[str],
    servers: list[str],
    scenarios: list[str],
    versions: dict[str, str],
    rounds: int,
    seconds: float,
    date: str,
) -> str:
    lines = [
        f"geventws benchmarks, {date}: medians of {rounds} rounds of {seconds:g} s, "
        f"server on core {SERVER_CORE}, load on core {LOAD_CORE}",
        "versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
        "",
    ]
    peers = [s for s in servers if s != "geventws"]
    summary: list[list[str]] = []
    for name in scenarios:
        sc = SCENARIOS[name]
        by_server = results.get(name, {})
        better = "higher" if sc.higher_is_better else "lower"
        cpu_based = sc.higher_is_better
        lines.append(f"#### {name}: {sc.title}")
        lines.append("")
        lines.append(f"{sc.unit}, {better} is better; median over rounds")
        lines.append("")
        header = ["server", sc.metric]
        if cpu_based:
            header.append("per server CPU-s")
        header += [*sc.extra, "each round", "geventws/server"]
        if cpu_based:
            header.append("same, per CPU-s")
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))

        def cpu_median(runs: list[dict[str, Any]], metric: str = sc.metric) -> float | None:
            values = [v for v in (per_cpu(r, metric) for r in runs) if v is not None]
            return statistics.median(values) if values else None

        g_runs = by_server.get("geventws", [])
        g, g_cpu = medians(g_runs, sc.metric), cpu_median(g_runs)
        row = [name, f"{sc.unit} ({better} is better)"]
        row_cpu = []
        for server in servers:
            runs = by_server.get(server, [])
            m, m_cpu = medians(runs, sc.metric), cpu_median(runs)
            each = " / ".join(fmt(r[sc.metric]) for r in runs) or "-"
            cells = [server, fmt(m)]
            if cpu_based:
                cells.append(fmt(m_cpu))
            cells += [*(fmt(medians(runs, k)) for k in sc.extra), each]
            if server == "geventws":
                cells += ["-", "-"] if cpu_based else ["-"]
            else:
                cells.append(ratio(g, m))
                row.append(ratio(g, m))
                if cpu_based:
                    cells.append(ratio(g_cpu, m_cpu))
                    row_cpu.append(ratio(g_cpu, m_cpu))
                else:
                    row_cpu.append("(same)")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        summary.append(row + row_cpu)
    if peers and "geventws" in servers:
        lines.append("#### Summary: geventws/peer, from the medians of this run")
        lines.append("")
        header = ["scenario", "headline", *(f"vs {p}" for p in peers)]
        header += [f"vs {p}, per CPU-s" for p in peers]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        for row in summary:
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    if failures:
        lines.append("FAILURES:")
        lines.extend(f"- {f}" for f in failures)
    return "\n".join(lines)


# ---------------------------------------------------------------------- main


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, needed)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < needed:
        print(
            f"warning: the open-file limit ({target}) is below {needed}; idle-conns will fail "
            "(raise the hard limit: ulimit -Hn)",
            file=sys.stderr,
        )


def parse_list(value: str, known: list[str], what: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [v for v in items if v not in known]
    if unknown:
        raise SystemExit(f"unknown {what}: {', '.join(unknown)} (known: {', '.join(known)})")
    return items


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # Five short rounds rather than three long ones: a median of five is not moved by one
    # round in a slow phase of this shared machine.
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each measurement")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--servers", default=",".join(ALL_SERVERS))
    parser.add_argument("--json", help="write every result and the medians to this file")
    parser.add_argument(
        "--quiet-below",
        type=float,
        default=0.2,
        metavar="CORES",
        help="before each measurement, wait until other processes use less CPU than this",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=3.0,
        metavar="S",
        help="longest wait for that before measuring anyway (0: never wait)",
    )
    parser.add_argument(
        "--keep-freed-memory",
        action="store_true",
        help="run every Python server with glibc keeping freed memory (MALLOC_TRIM_THRESHOLD_"
        " and MALLOC_MMAP_THRESHOLD_ raised) instead of its defaults",
    )
    parser.add_argument("--python", default=sys.executable, help="Python for the virtualenv")
    parser.add_argument("--work-dir", default=str(BENCH / ".work"))
    parser.add_argument(
        "--report-from", metavar="FILE", help="print the report of a saved --json file and exit"
    )
    args = parser.parse_args()
    if args.report_from:
        saved = json.loads(Path(args.report_from).read_text())
        runs = saved["runs"]
        names = [s for s in KNOWN_SERVERS if any(s in runs[sc] for sc in runs)]
        print(
            report(
                runs,
                saved["failures"],
                names,
                [s for s in SCENARIOS if s in runs],
                saved["versions"],
                saved["rounds"],
                saved["seconds"],
                saved["date"][:10],
            )
        )
        return 0
    scenarios = parse_list(args.scenarios, list(SCENARIOS), "scenario")
    servers = parse_list(args.servers, KNOWN_SERVERS, "server")
    if (os.cpu_count() or 1) < 2:
        print("warning: fewer than 2 cores; server and load share a core", file=sys.stderr)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    raise_fd_limit(IDLE_CONNECTIONS + 200)
    work = Path(args.work_dir).resolve()
    try:
        try:
            versions = setup(work, args.python)
        except (subprocess.CalledProcessError, OSError) as error:
            print(f"set-up failed: {error}", file=sys.stderr)
            return 2
        if args.keep_freed_memory:
            versions["Python servers' malloc"] = "keeps freed memory: " + " ".join(
                f"{k}={v}" for k, v in KEEP_FREED_MEMORY.items()
            )
        print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()), flush=True)
        results: dict[str, dict[str, list[dict[str, Any]]]] = {s: {} for s in scenarios}
        failures: list[str] = []
        started = time.monotonic()
        for round_number in range(args.rounds):
            shift = round_number % len(servers)
            order = servers[shift:] + servers[:shift]
            for scenario in scenarios:
                for name in order:
                    label = f"round {round_number + 1}/{args.rounds} {scenario:15} {name:17}"
                    print(label, end=" ", flush=True)
                    server = None
                    try:
                        if args.quiet_wait > 0:
                            wait_for_quiet(args.quiet_below, args.quiet_wait)
                        server = Server(
                            name,
                            work,
                            f"{scenario}-{name}-r{round_number + 1}",
                            KEEP_FREED_MEMORY
                            if args.keep_freed_memory and name in PYTHON_SERVERS
                            else None,
                        )
                        result = measure(scenario, server, work, args.seconds)
                        if not server.alive():
                            raise RuntimeError("the server died")
                    except RuntimeError as error:
                        tail = server.log_tail() if server else ""
                        failures.append(f"{scenario} {name} round {round_number + 1}: {error}")
                        print(f"FAILED: {error}\n{tail}", flush=True)
                        continue
                    finally:
                        if server is not None:
                            server.stop()
                    results[scenario].setdefault(name, []).append(result)
                    sc = SCENARIOS[scenario]
                    extra = ", ".join(f"{k} {result[k]}" for k in sc.extra if k in result)
                    print(f"{fmt(result[sc.metric])} {sc.unit} ({extra})", flush=True)
        print(f"\n(total {time.monotonic() - started:.0f} s)\n")
        state = geventws_state().split(", ")[1]
        if state not in versions["geventws"]:
            warning = (
                f"warning: geventws/ changed during the run ({versions['geventws']} -> "
                f"{state}); the measurements mix versions"
            )
            print(warning + "\n")
            versions["warning"] = warning
        text = report(
            results,
            failures,
            servers,
            scenarios,
            versions,
            args.rounds,
            args.seconds,
            datetime.date.today().isoformat(),
        )
        print(text)
        if args.json:
            summary = {
                scenario: {
                    server: {
                        key: medians(runs, key)
                        for key in [SCENARIOS[scenario].metric, *SCENARIOS[scenario].extra]
                    }
                    for server, runs in by_server.items()
                }
                for scenario, by_server in results.items()
            }
            Path(args.json).write_text(
                json.dumps(
                    {
                        "date": datetime.datetime.now().isoformat(timespec="seconds"),
                        "machine": {
                            "cpus": os.cpu_count(),
                            "kernel": platform.release(),
                        },
                        "versions": versions,
                        "rounds": args.rounds,
                        "seconds": args.seconds,
                        "quiet_below": args.quiet_below,
                        "quiet_wait": args.quiet_wait,
                        "medians": summary,
                        "runs": results,
                        "failures": failures,
                    },
                    indent=2,
                )
                + "\n"
            )
        return 1 if failures else 0
    finally:
        stop_all()


if __name__ == "__main__":
    sys.exit(main())
