"""Greenlets' freed Python data stacks are kept for the next greenlets (geventws.stack_chunks).

The checks run in processes of their own: the spare count is process-wide, and greenlets or
threads that earlier tests left to end could move it in the middle of an exact check here.
"""

from __future__ import annotations

import sys
import sysconfig

import pytest
from conftest import run_in_new_python

from geventws import accelerator, stack_chunks

#: Where the chunks are kept: the accelerator built, data stacks (3.11+), the GIL, not 3.14+.
KEPT_HERE = (
    accelerator.accelerated("keep_stack_chunks") is not None
    and (3, 11) <= sys.version_info[:2] < (3, 14)
    and not sysconfig.get_config_var("Py_GIL_DISABLED")
)


#: The tests that need chunks kept.
kept_only = pytest.mark.skipif(not KEPT_HERE, reason="no data stack chunks to keep on this Python")

#: What the checks below start with.
_PRELUDE = r"""
import gevent
from geventws import stack_chunks

def depth(n):
    return 0 if n == 0 else 1 + depth(n - 1)
"""


def run_check(script: str, *, prelude: bool = True) -> None:
    """Run ``script`` (after :data:`_PRELUDE`, unless not ``prelude``) in a new Python process;
    the script prints ``ok`` when all its checks held."""
    run_in_new_python(_PRELUDE + script if prelude else script)


def test_chunks_are_kept_exactly_where_the_interpreter_has_them():
    assert stack_chunks.KEEPING_STACK_CHUNKS is KEPT_HERE
    if KEPT_HERE:
        assert 0 <= stack_chunks.spare_stack_chunks() <= 64
    else:  # Python 3.10 has no data stacks: nothing to keep, and releasing is harmless
        assert stack_chunks.spare_stack_chunks() == -1
        stack_chunks.release_spare_stack_chunks()
        assert stack_chunks.spare_stack_chunks() == -1


_REUSE_CHECK = r"""
from gevent.event import Event

def spare():
    return stack_chunks.spare_stack_chunks()

def holders(count, levels):
    # `count` greenlets, each running Python code and then waiting: each holds a chunk.
    release, started, all_started = Event(), [], Event()
    def hold():
        started.append(depth(levels))
        if len(started) == count:
            all_started.set()
        release.wait()
        return depth(levels)  # Python code again, on the same (possibly reused) chunk
    group = [gevent.spawn(hold) for _ in range(count)]
    assert all_started.wait(10), "the holders did not all start"
    assert started == [levels] * count
    return release, group

def finish(release, group, levels):
    release.set()
    gevent.joinall(group, timeout=10)
    assert [g.value for g in group] == [levels] * len(group), [g.exception for g in group]

assert stack_chunks.KEEPING_STACK_CHUNKS
stack_chunks.release_spare_stack_chunks()
assert spare() == 0

release, group = holders(8, 20)
assert spare() == 0  # eight fresh chunks in use
finish(release, group, 20)
assert spare() == 8  # kept when their greenlets ended

release, group = holders(8, 20)
assert spare() == 0  # the next eight greenlets took them
finish(release, group, 20)
assert spare() == 8

# Frames deeper than one chunk: the greenlets take further chunks (kept too when they end);
# the results are right.
release, group = holders(4, 900)
finish(release, group, 900)
assert 8 < spare() <= 64

release, group = holders(100, 20)
finish(release, group, 20)
assert spare() == 64  # at most 64 kept

stack_chunks.release_spare_stack_chunks()
assert spare() == 0
release, group = holders(3, 20)
finish(release, group, 20)
assert spare() == 3
print("ok")
"""


@kept_only
def test_chunks_of_ended_greenlets_go_to_the_next_greenlets():
    run_check(_REUSE_CHECK)


_THREADS_CHECK = r"""
import threading

# Threads end (their thread states are deleted) while greenlets and other threads run Python
# code: all results right, and never more than 64 kept.
results = []
def work(levels):
    results.append(depth(levels))

for rounds in range(20):
    threads = [threading.Thread(target=work, args=(10 + i * 40,)) for i in range(8)]
    for thread in threads:
        thread.start()
    greenlets = [gevent.spawn(depth, 30) for _ in range(8)]
    gevent.joinall(greenlets, timeout=10)
    for thread in threads:
        thread.join(10)
    assert [g.value for g in greenlets] == [30] * 8
    assert 0 < stack_chunks.spare_stack_chunks() <= 64
assert sorted(results) == sorted([10 + i * 40 for i in range(8)] * 20)
print("ok")
"""


@kept_only
def test_threads_and_greenlets_ending_together_share_the_spares_safely():
    run_check(_THREADS_CHECK)


_FORK_CHECK = r"""
import os

gevent.joinall([gevent.spawn(depth, 20) for _ in range(4)], timeout=10)
before = stack_chunks.spare_stack_chunks()
assert before >= 1
pid = os.fork()
if pid == 0:  # the child goes on keeping and reusing chunks
    ok = stack_chunks.spare_stack_chunks() == before
    results = [g.value for g in gevent.joinall([gevent.spawn(depth, 20) for _ in range(8)])]
    ok = ok and sorted(results) == [20] * 8 and 1 <= stack_chunks.spare_stack_chunks() <= 64
    os._exit(0 if ok else 1)
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0, "the child's checks failed"
print("ok")
"""


@kept_only
def test_a_forked_child_keeps_and_reuses_chunks():
    run_check(_FORK_CHECK)


_SUBINTERPRETER_CHECK = r"""
import importlib.util, os, sysconfig
import _testcapi
# The C module's file, found without importing geventws (which would keep the chunks at once).
package = importlib.util.find_spec("geventws").submodule_search_locations[0]
path = os.path.join(package, "_speedups" + sysconfig.get_config_var("EXT_SUFFIX"))
code = (
    "import importlib.util\n"
    f"spec = importlib.util.spec_from_file_location('geventws._speedups', {path!r})\n"
    "module = importlib.util.module_from_spec(spec)\n"
    "assert module.keep_stack_chunks() is False, 'kept from a subinterpreter'\n"
    "assert module.spare_stack_chunks() == -1\n"
)
assert _testcapi.run_in_subinterp(code) == 0, "the subinterpreter's checks failed"
from geventws import stack_chunks
assert stack_chunks.KEEPING_STACK_CHUNKS, "the main interpreter did not keep them"
assert stack_chunks.spare_stack_chunks() >= 0
print("ok")
"""


@kept_only
def test_only_the_main_interpreter_puts_the_layer_in_place():
    pytest.importorskip("_testcapi")
    run_check(_SUBINTERPRETER_CHECK, prelude=False)  # geventws not imported before it
