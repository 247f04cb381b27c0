"""Autobahn|Testsuite conformance: ``wstest -m fuzzingclient`` (cases 1.* to 10.*) against
``examples/echo_server.py``, through ``tests/autobahn/run.py``.

The run installs wstest (Python 2.7, outside the repository) on first use; a failed install
fails this test rather than skipping it. Select it alone with ``-m autobahn``, leave it out
with ``-m "not autobahn"``.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

RUN = os.path.join(os.path.dirname(__file__), "autobahn", "run.py")
#: run.py's own limits: install (first time only) and the wstest run.
INSTALL_TIMEOUT = 1800
RUN_TIMEOUT = 600
#: This test's limit: both of run.py's, plus time for it to start, report and clean up.
TIMEOUT = INSTALL_TIMEOUT + RUN_TIMEOUT + 120


@pytest.mark.autobahn
@pytest.mark.timeout(TIMEOUT + 60)
def test_autobahn_fuzzingclient_finds_every_case_ok():
    argv = [
        sys.executable,  # the interpreter running pytest, so the installed geventws serves
        RUN,
        "--timeout",
        str(RUN_TIMEOUT),
        "--install-timeout",
        str(INSTALL_TIMEOUT),
    ]
    process = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.terminate()  # run.py stops its server and wstest on SIGTERM
        try:
            output, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        pytest.fail(f"run.py did not finish within {TIMEOUT} s:\n{output}")
    print(output)  # the table, shown with -s or -rP
    assert process.returncode == 0, f"run.py exited {process.returncode}:\n{output}"
