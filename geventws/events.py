"""Named events with listeners, in the style of Node's EventEmitter, safe for gevent.

A listener that raises is logged with its traceback and the other listeners still run: an
application bug never ends a connection's reader or the server. Whether a listener may block
depends on who emits: a connection's listeners may block without stalling its reading (if
one blocks, the reading moves to another greenlet; see :mod:`geventws.connection`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar, overload

Listener = Callable[..., Any]
_L = TypeVar("_L", bound=Listener)

logger = logging.getLogger("geventws.events")


class EventEmitter:
    """Listeners by event name; :meth:`emit` calls them in the order they were added.

    Subclasses name their events in ``EVENTS``; using any other name raises ``ValueError``,
    so a typo such as ``on("mesage", ...)`` fails at once instead of never firing.
    """

    EVENTS: tuple[str, ...] = ()
    # "__dict__" keeps arbitrary attributes working (made only when first used).
    __slots__ = ("__dict__", "__weakref__", "_listeners")

    def __init__(self) -> None:
        self._listeners: dict[str, list[Listener]] = {}

    def _check_event(self, event: str) -> None:
        if event not in self.EVENTS:
            raise ValueError(
                f"{type(self).__name__} has no event {event!r}; its events are {list(self.EVENTS)}"
            )

    @overload
    def on(self, event: str) -> Callable[[_L], _L]: ...

    @overload
    def on(self, event: str, listener: _L) -> _L: ...

    def on(self, event: str, listener: Listener | None = None) -> Any:
        """Call ``listener`` every time ``event`` is emitted; returns the listener.

        Without a listener, returns a decorator: ``@server.on("request")``.
        """
        self._check_event(event)
        if listener is None:
            return lambda function: self.on(event, function)
        if not callable(listener):
            raise TypeError(f"a listener must be callable, got {listener!r}")
        self._listeners.setdefault(event, []).append(listener)
        self._listener_added(event)
        return listener

    add_listener = on

    def once(self, event: str, listener: Listener) -> Listener:
        """Call ``listener`` the next time ``event`` is emitted, then forget it."""

        def call_once(*args: Any) -> Any:
            self.off(event, call_once)
            return listener(*args)

        call_once.listener = listener  # type: ignore[attr-defined]
        return self.on(event, call_once)

    def off(self, event: str, listener: Listener) -> None:
        """Stop calling ``listener`` for ``event`` (added by :meth:`on` or :meth:`once`)."""
        self._check_event(event)
        listeners = self._listeners.get(event, [])
        for index, candidate in enumerate(listeners):
            # == rather than `is`: each access to a bound method makes a new, equal object.
            if candidate == listener or getattr(candidate, "listener", None) == listener:
                del listeners[index]
                return

    remove_listener = off

    def remove_all_listeners(self, event: str | None = None) -> None:
        """Forget the listeners of ``event``, or of every event when it is None."""
        if event is None:
            self._listeners.clear()
        else:
            self._check_event(event)
            self._listeners.pop(event, None)

    def listeners(self, event: str) -> list[Listener]:
        """Return a copy of the listeners of ``event``."""
        self._check_event(event)
        return list(self._listeners.get(event, ()))

    def listener_count(self, event: str) -> int:
        """Return how many listeners ``event`` has."""
        return len(self._listeners.get(event, ()))

    def emit(self, event: str, *args: Any) -> bool:
        """Call the listeners of ``event`` with ``args`` in this greenlet; True if it had any.

        A listener's exception is logged (with traceback) on the ``geventws`` logger and does
        not stop the other listeners.
        """
        listeners = self._listeners.get(event)
        if not listeners:
            return False
        self._call_listeners(event, listeners, args)
        return True

    def emit_counting_failures(self, event: str, *args: Any) -> int:
        """Like :meth:`emit`, but return how many listeners raised."""
        listeners = self._listeners.get(event)
        return self._call_listeners(event, listeners, args) if listeners else 0

    def _call_listeners(self, event: str, listeners: list[Listener], args: tuple[Any, ...]) -> int:
        """Call each of ``listeners`` (as they were at the start: one added or removed by a
        listener takes effect from the next emit) with ``args``; count those that raised."""
        failures = 0
        # One listener is the common case: no copy of the list for it.
        for listener in (listeners[0],) if len(listeners) == 1 else tuple(listeners):
            try:
                listener(*args)
            except Exception:
                failures += 1
                self._listener_raised(event, listener)
        return failures

    def _listener_raised(self, event: str, listener: Listener) -> None:
        """Log the exception a listener just raised (called from its ``except`` clause)."""
        logger.exception("%r listener %r of %r raised", event, listener, self)

    def _listener_added(self, event: str) -> None:
        """Hook for subclasses that react to a new listener."""
