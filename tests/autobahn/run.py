"""Autobahn|Testsuite conformance run: ``wstest -m fuzzingclient`` against the echo example.

    python tests/autobahn/run.py [--timeout S] [--cases 1.* 5.19 ...] [--workdir DIR] [--keep]
                                 [-- EXTRA ECHO SERVER FLAGS ...]

Installs wstest if needed (``install.sh``, Python 2.7, outside the repository), starts
``examples/echo_server.py`` with this interpreter on a free port, runs the fuzzing client with
``fuzzingclient.json`` (cases 1.* to 10.*, i.e. all but the compression cases 12.* and 13.*),
then reads the report (``<workdir>/reports/index.json``), prints the counts per case group by
``behavior`` and ``behaviorClose``, and lists every case that is not OK.

Exit status 0 only if every case is OK on both counts (7.1.6, 7.13.1 and 7.13.2 may be
INFORMATIONAL, as the suite rates them so for every server) and the echo server ran to the end
and stopped cleanly on SIGTERM without logging a traceback; 1 on a non-conforming case or a
server crash; 2 when the run could not be made (install failed, server did not start, timeout).
Every process started here is stopped (by its pid) before exiting, also on SIGTERM/SIGINT.
The work directory (spec, reports, logs) is removed after a passing run unless --keep or
--workdir is given, and kept after a failing one.

Standard library only, so it runs with any Python >= 3.10 that has geventws importable.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
ECHO_SERVER = os.path.join(ROOT, "examples", "echo_server.py")
INSTALL = os.path.join(HERE, "install.sh")
SPEC_TEMPLATE = os.path.join(HERE, "fuzzingclient.json")
AGENT = "geventws"

#: The limits the suite needs: cases 9.* send messages and frames of up to 16 MiB, and the
#: server's own pings would only add noise to the wire logs.
SERVER_FLAGS = [
    "--max-received-frame-size",
    "16777216",
    "--max-received-message-size",
    "16777216",
    "--no-keepalive",
]

#: Cases the suite itself rates INFORMATIONAL at best (close with an empty/invalid payload and
#: close codes it does not judge); anything else must be OK.
INFORMATIONAL_ALLOWED = frozenset({"7.1.6", "7.13.1", "7.13.2"})
BEHAVIOR_ORDER = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "WRONG CODE", "FAILED"]

EXIT_PASS, EXIT_FAIL, EXIT_ERROR = 0, 1, 2


class RunError(Exception):
    """The run could not be made (exit status 2)."""


class Stop(BaseException):
    """Raised by the SIGTERM handler so every ``finally`` runs."""


def log(message: str) -> None:
    print(f"autobahn: {message}", file=sys.stderr, flush=True)


def case_key(case_id: str) -> tuple[int, ...]:
    return tuple(int(part) for part in case_id.split("."))


def tail(path: str, lines: int = 40) -> str:
    try:
        with open(path, errors="replace") as file:
            return "".join(file.readlines()[-lines:])
    except OSError as error:
        return f"({path}: {error})\n"


class Processes:
    """The child processes of this run, each in its own session; stopped by pid on exit."""

    def __init__(self) -> None:
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(argv, start_new_session=True, **kwargs)
        self.children.append((name, process))
        return process

    @staticmethod
    def kill(process: subprocess.Popen[bytes]) -> None:
        """SIGKILL ``process`` and its process group (which it leads: its own session)."""
        if process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except OSError:
            process.kill()
        process.wait(timeout=10)

    def stop_all(self) -> None:
        for name, process in reversed(self.children):
            if process.poll() is None:
                log(f"stopping {name} (pid {process.pid})")
                self.kill(process)


def install(timeout: float) -> str:
    """Run install.sh (it reuses a good install); return the directory holding ``wstest``."""
    log("checking the wstest install (tests/autobahn/install.sh)")
    started = time.monotonic()
    try:
        result = subprocess.run(
            ["bash", INSTALL],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise RunError(f"install.sh did not finish within {timeout:.0f} s") from None
    if result.returncode != 0:
        raise RunError(
            f"installing Autobahn|Testsuite failed (install.sh exited {result.returncode}; "
            "its messages are above)"
        )
    lines = result.stdout.strip().splitlines()
    bindir = lines[-1] if lines else ""
    if not os.access(os.path.join(bindir, "wstest"), os.X_OK):
        raise RunError(f"install.sh did not report a wstest (stdout: {result.stdout!r})")
    log(f"wstest ready in {bindir} ({time.monotonic() - started:.1f} s)")
    return bindir


def start_server(
    processes: Processes, workdir: str, extra: list[str], timeout: float = 30
) -> tuple[subprocess.Popen[bytes], int]:
    """Start the echo example on a free port; return it and its port once it listens."""
    stdout_path = os.path.join(workdir, "echo_server.stdout")
    stderr_path = os.path.join(workdir, "echo_server.stderr")
    argv = [sys.executable, ECHO_SERVER, "--host", "127.0.0.1", "--port", "0"]
    argv += SERVER_FLAGS + extra
    log("starting " + " ".join(argv[1:]))
    with open(stdout_path, "wb") as stdout, open(stderr_path, "wb") as stderr:
        server = processes.start(
            "echo server", argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, cwd=ROOT
        )
    deadline = time.monotonic() + timeout
    while True:
        with open(stdout_path, errors="replace") as file:
            match = re.search(r"listening on ws://[^\s]*:(\d+)/", file.read())
        if match:
            return server, int(match.group(1))
        if server.poll() is not None:
            raise RunError(
                f"the echo server exited ({server.returncode}) before listening:\n"
                + tail(stderr_path)
            )
        if time.monotonic() > deadline:
            raise RunError(f"the echo server did not listen within {timeout:.0f} s")
        time.sleep(0.05)


def write_spec(workdir: str, port: int, cases: list[str] | None) -> tuple[str, dict[str, Any]]:
    with open(SPEC_TEMPLATE) as file:
        spec = json.load(file)
    spec["outdir"] = os.path.join(workdir, "reports")
    for server in spec["servers"]:
        server["url"] = server["url"].replace("PORT", str(port))
    if cases:
        spec["cases"] = cases
    path = os.path.join(workdir, "fuzzingclient.json")
    with open(path, "w") as file:
        json.dump(spec, file, indent=4)
    return path, spec


def run_wstest(
    processes: Processes,
    bindir: str,
    spec_path: str,
    server: subprocess.Popen[bytes],
    workdir: str,
    timeout: float,
) -> float:
    """Run the fuzzing client to its end; return its duration. Fails fast if the server dies."""
    log_path = os.path.join(workdir, "wstest.log")
    env = dict(os.environ, PYTHONWARNINGS="ignore", PYTHONUNBUFFERED="1")
    env.pop("PYTHONPATH", None)
    env.pop("PYTHONHOME", None)
    argv = [os.path.join(bindir, "wstest"), "-m", "fuzzingclient", "-s", spec_path]
    log(f"running {' '.join(argv[1:])} (log: {log_path})")
    started = time.monotonic()
    with open(log_path, "wb") as output:
        wstest = processes.start(
            "wstest",
            argv,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            env=env,
        )
    while True:
        try:
            returncode = wstest.wait(timeout=0.25)
            break
        except subprocess.TimeoutExpired:
            pass
        if server.poll() is not None:
            processes.kill(wstest)
            raise RunError(
                f"the echo server died (exit status {server.returncode}) during the run; "
                f"stderr:\n{tail(os.path.join(workdir, 'echo_server.stderr'))}"
                f"wstest log:\n{tail(log_path)}"
            )
        if time.monotonic() - started > timeout:
            processes.kill(wstest)
            raise RunError(
                f"wstest did not finish within {timeout:.0f} s; its log ends:\n{tail(log_path)}"
            )
    duration = time.monotonic() - started
    if returncode != 0:
        raise RunError(f"wstest exited {returncode}; its log ends:\n{tail(log_path)}")
    log(f"wstest finished in {duration:.1f} s")
    return duration


def stop_server(server: subprocess.Popen[bytes], workdir: str) -> list[str]:
    """SIGTERM the echo server; return the problems seen (a crash, a traceback in its log)."""
    problems = []
    if server.poll() is not None:
        problems.append(f"the echo server had exited ({server.returncode}) by the end of the run")
    else:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            Processes.kill(server)
            problems.append("the echo server did not stop within 20 s of SIGTERM")
        else:
            if server.returncode != 0:
                problems.append(f"the echo server exited {server.returncode} on SIGTERM")
    stderr = tail(os.path.join(workdir, "echo_server.stderr"), lines=10**6)
    if "Traceback" in stderr or re.search(r"^(ERROR|CRITICAL):", stderr, re.MULTILINE):
        problems.append("the echo server logged errors:\n" + stderr[-8000:])
    return problems


def counts_table(title: str, results: dict[str, dict[str, Any]], key: str) -> str:
    """Counts of ``results[case][key]`` per case group (the case id's first number)."""
    per_group: dict[int, Counter[str]] = {}
    for case_id, result in results.items():
        per_group.setdefault(case_key(case_id)[0], Counter())[result[key]] += 1
    total = sum(per_group.values(), Counter())
    values = [v for v in BEHAVIOR_ORDER if v in total or v in ("OK", "NON-STRICT", "FAILED")]
    values += sorted(set(total) - set(values))
    widths = [max(len(value), 4) for value in values]
    header = f"{'group':>5} {'cases':>5} | " + " ".join(
        f"{v:>{w}}" for v, w in zip(values, widths, strict=True)
    )

    def row(label: str, counter: Counter[str]) -> str:
        cells = " ".join(f"{counter[v]:>{w}}" for v, w in zip(values, widths, strict=True))
        return f"{label:>5} {sum(counter.values()):>5} | {cells}"

    lines = [title, header, "-" * len(header)]
    lines += [row(f"{group}.*", per_group[group]) for group in sorted(per_group)]
    lines += ["-" * len(header), row("all", total)]
    return "\n".join(lines)


def judge(case_id: str, result: dict[str, Any]) -> bool:
    allowed = {"OK", "INFORMATIONAL"} if case_id in INFORMATIONAL_ALLOWED else {"OK"}
    return result["behavior"] in allowed and result["behaviorClose"] in allowed


def case_details(reports: str, result: dict[str, Any]) -> Iterable[str]:
    """The lines of a case's own report that say what went wrong."""
    try:
        with open(os.path.join(reports, result["reportfile"])) as file:
            report = json.load(file)
    except (OSError, ValueError, KeyError) as error:
        yield f"(no case report: {error})"
        return
    yield "description: " + " ".join(str(report.get("description", "")).split())
    yield "expectation: " + " ".join(str(report.get("expectation", "")).split())
    yield f"result: {report.get('result')}"
    yield f"resultClose: {report.get('resultClose')}"
    yield (
        f"close codes: local {report.get('localCloseCode')}, remote "
        f"{report.get('remoteCloseCode')} ({report.get('remoteCloseReason')!r}); "
        f"wasClean {report.get('wasClean')}, droppedByMe {report.get('droppedByMe')}"
    )


def expected_groups(spec: dict[str, Any]) -> set[int]:
    return {int(pattern.split(".")[0]) for pattern in spec["cases"]}


def evaluate(workdir: str, spec: dict[str, Any]) -> list[str]:
    """Print the tables and the non-OK cases; return the failures."""
    reports = spec["outdir"]
    try:
        with open(os.path.join(reports, "index.json")) as file:
            index = json.load(file)
    except (OSError, ValueError) as error:
        raise RunError(f"no usable report {reports}/index.json: {error}") from None
    results: dict[str, dict[str, Any]] = index.get(AGENT, {})
    if not results:
        raise RunError(f"the report has no results for agent {AGENT!r}")
    missing = expected_groups(spec) - {case_key(case_id)[0] for case_id in results}
    if missing:
        raise RunError(f"the report has no cases of group(s) {sorted(missing)}")

    print(counts_table("behavior (per case group):", results, "behavior"))
    print()
    print(counts_table("behaviorClose (per case group):", results, "behaviorClose"))
    print()
    failures = []
    not_ok = [
        case_id
        for case_id in sorted(results, key=case_key)
        if results[case_id]["behavior"] != "OK" or results[case_id]["behaviorClose"] != "OK"
    ]
    print(f"{len(results)} cases; {len(not_ok)} not OK" + (":" if not_ok else "."))
    for case_id in not_ok:
        result = results[case_id]
        passed = judge(case_id, result)
        verdict = "allowed" if passed else "FAIL"
        print(
            f"  {case_id:<8} behavior={result['behavior']:<13} "
            f"behaviorClose={result['behaviorClose']:<13} "
            f"remoteCloseCode={result['remoteCloseCode']}  [{verdict}]"
        )
        if not passed:
            failures.append(case_id)
            for line in case_details(reports, result):
                print(f"           {line}")
            print(f"           report: {os.path.join(reports, result['reportfile'])}")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timeout", type=float, default=600, help="wstest run limit, s")
    parser.add_argument("--install-timeout", type=float, default=1800, help="install limit, s")
    parser.add_argument("--cases", nargs="+", help="case patterns instead of the spec's")
    parser.add_argument("--workdir", help="keep spec, reports and logs here (not removed)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("server_args", nargs="*", help="extra echo server flags (after --)")
    args = parser.parse_args(argv)

    def on_signal(signum: int, frame: object) -> None:
        raise Stop(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    if args.workdir:
        workdir = os.path.abspath(args.workdir)
        os.makedirs(workdir, exist_ok=True)
        shutil.rmtree(os.path.join(workdir, "reports"), ignore_errors=True)
    else:
        workdir = tempfile.mkdtemp(prefix="geventws-autobahn-")
    keep = bool(args.workdir or args.keep)
    processes = Processes()
    started = time.monotonic()
    status = EXIT_ERROR
    try:
        bindir = install(args.install_timeout)
        server, port = start_server(processes, workdir, args.server_args)
        spec_path, spec = write_spec(workdir, port, args.cases)
        duration = run_wstest(processes, bindir, spec_path, server, workdir, args.timeout)
        problems = stop_server(server, workdir)
        failures = evaluate(workdir, spec)
        for problem in problems:
            print(f"FAIL: {problem}")
        if failures:
            print(f"FAIL: {len(failures)} case(s) not conforming: {', '.join(failures)}")
        status = EXIT_FAIL if failures or problems else EXIT_PASS
        print(
            f"{'PASS' if status == EXIT_PASS else 'FAIL'}: wstest run {duration:.1f} s, "
            f"total {time.monotonic() - started:.1f} s"
        )
    except RunError as error:
        print(f"ERROR: {error}")
    except Stop as stop:
        print(f"ERROR: interrupted by {stop}")
    finally:
        processes.stop_all()
        sys.stdout.flush()
        if not keep and (status == EXIT_PASS or not os.listdir(workdir)):
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log(f"work directory kept: {workdir}")
    return status


if __name__ == "__main__":
    sys.exit(main())
