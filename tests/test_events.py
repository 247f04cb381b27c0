"""The event emitter every geventws object uses."""

from __future__ import annotations

import logging

import pytest

from geventws.events import EventEmitter


class Emitter(EventEmitter):
    EVENTS = ("ping", "pong")


def test_listeners_run_in_the_order_they_were_added_with_the_arguments():
    emitter = Emitter()
    calls: list[tuple[str, tuple[object, ...]]] = []
    emitter.on("ping", lambda *args: calls.append(("first", args)))
    emitter.on("ping", lambda *args: calls.append(("second", args)))
    assert emitter.emit("ping", 1, "two") is True
    assert calls == [("first", (1, "two")), ("second", (1, "two"))]


def test_emit_without_listeners_returns_false():
    assert Emitter().emit("pong") is False


def test_on_works_as_a_decorator_and_returns_the_function():
    emitter = Emitter()
    seen: list[int] = []

    @emitter.on("ping")
    def listener(value: int) -> None:
        seen.append(value)

    emitter.emit("ping", 7)
    assert seen == [7]
    assert emitter.listeners("ping") == [listener]


def test_once_runs_a_single_time_and_off_removes_it_before_that():
    emitter = Emitter()
    seen: list[int] = []
    emitter.once("ping", seen.append)
    emitter.emit("ping", 1)
    emitter.emit("ping", 2)
    assert seen == [1]
    emitter.once("ping", seen.append)
    emitter.off("ping", seen.append)
    emitter.emit("ping", 3)
    assert seen == [1]
    assert emitter.listener_count("ping") == 0


def test_off_removes_one_registration_and_remove_all_listeners_clears():
    emitter = Emitter()
    seen: list[int] = []
    emitter.on("ping", seen.append)
    emitter.on("ping", seen.append)
    emitter.off("ping", seen.append)
    emitter.emit("ping", 1)
    assert seen == [1]
    emitter.on("pong", seen.append)
    emitter.remove_all_listeners("ping")
    assert emitter.listener_count("ping") == 0
    assert emitter.listener_count("pong") == 1
    emitter.remove_all_listeners()
    assert emitter.listener_count("pong") == 0


def test_listeners_returns_a_copy():
    emitter = Emitter()
    emitter.on("ping", print)
    emitter.listeners("ping").clear()
    assert emitter.listener_count("ping") == 1


def test_unknown_event_names_and_non_callables_are_refused():
    emitter = Emitter()
    with pytest.raises(ValueError, match=r"'pnig'.*\['ping', 'pong'\]"):
        emitter.on("pnig", print)
    with pytest.raises(ValueError, match="'nope'"):
        emitter.listeners("nope")
    with pytest.raises(TypeError, match="callable, got 42"):
        emitter.on("ping", 42)  # type: ignore[call-overload]


def test_a_raising_listener_is_logged_and_the_others_still_run(caplog):
    emitter = Emitter()
    seen: list[str] = []

    def broken(_: str) -> None:
        raise RuntimeError("listener bug")

    emitter.on("ping", broken)
    emitter.on("ping", seen.append)
    with caplog.at_level(logging.ERROR, logger="geventws"):
        assert emitter.emit_counting_failures("ping", "x") == 1
        assert emitter.emit("ping", "y") is True
    assert seen == ["x", "y"]
    errors = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert len(errors) == 2
    assert errors[0].exc_info is not None
    assert "listener bug" in caplog.text
