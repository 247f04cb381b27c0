"""An accepted WebSocket connection: the gevent I/O around :class:`WebSocketProtocol`.

One greenlet reads (the pywsgi handler's own greenlet, after the upgrade). A message is given
to its listeners right there, in the reader, as long as they do not block; the moment one
blocks (waits on anything), the reading moves to a new greenlet and the blocked one goes on as
the connection's dispatcher, delivering later events in order once its listener returns. So a
listener that blocks or raises never stalls the reading, and the common case, a listener that
answers at once, costs no greenlet switch. Keepalive, grace and close timers are libev timers
on the hub: they cost nothing while idle and a received chunk only stores a timestamp.

Closing, in the three ways RFC 6455 (7.1) knows:
- :meth:`WebSocketConnection.close` sends our Close, reads on until the peer's Close, then
  closes TCP; after ``close_timeout`` it destroys the socket.
- The peer's Close is answered with its own code, then we close TCP (server first).
- A protocol error fails the connection: Close with the precise code, then TCP at once.
In the last two, the listeners first handle what arrived before (for at most ``close_timeout``),
so their answers to it still go out ahead of our Close.
The ``close`` event fires exactly once, after the socket is closed.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import ssl
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import gevent
import gevent.ssl
from gevent.event import Event
from gevent.lock import Semaphore
from greenlet import getcurrent

from .close_codes import CloseCode, describe
from .errors import ConnectionClosedError
from .events import EventEmitter
from .extensions import Extension
from .frames import OP_BINARY, OP_PING, OP_PONG, OP_TEXT, Frame
from .options import ServerOptions
from .protocol import (
    CloseReceived,
    ConnectionFailed,
    FrameReceived,
    MessageReceived,
    PingReceived,
    PongReceived,
    WebSocketProtocol,
)

if TYPE_CHECKING:
    from .server import WebSocketServer

logger = logging.getLogger("geventws.connection")

#: What send() takes as binary (a tuple: isinstance with one is quicker than with a union).
_BYTES_LIKE = (bytes, bytearray, memoryview)
_RECEIVE_SIZE = 65536
#: The 2-byte headers of unfragmented, unmasked text and binary frames of up to 125 bytes, by
#: opcode and payload length (taken from here rather than built for every small message).
_SHORT_FRAME_HEADERS = {
    opcode: tuple(bytes((0x80 | opcode, length)) for length in range(126))
    for opcode in (OP_TEXT, OP_BINARY)
}
#: How many received chunks a reader handles back to back before it lets others run.
_CHUNKS_BEFORE_YIELD = 8
#: Messages from this size on are sent with one gathering write (``sendmsg``) of their frame
#: headers and payload pieces, without copying the payload into frames first.
_GATHERED_WRITE_FROM = 0x10000
#: At most this many buffers in one gathering write (Linux takes 1,024).
_MAX_WRITE_PARTS = 1024
#: Linux's flag for a send whose data may wait for more (0 where there is none).
_MSG_MORE: int = getattr(socket, "MSG_MORE", 0)

OPEN = "open"
ENDING = "ending"
PEER_REQUESTED_CLOSE = "peer_requested_close"
CLOSED = "closed"


class _Terminate(Exception):  # noqa: N818 (a signal, not an error)
    """Thrown into the reader to make it close the socket now."""


class _ReaderMoved(Exception):  # noqa: N818 (a signal, not an error)
    """Raised in a greenlet whose listener blocked: another greenlet reads now."""


class _SendTimedOutError(Exception):
    """A send waited ``send_timeout`` for a peer that does not read."""


class WebSocketConnection(EventEmitter):
    """An open (or closing) WebSocket connection on the server side.

    Events: ``message`` (``str`` or ``bytes``), ``frame`` (:class:`~geventws.frames.Frame`,
    only with ``assemble_fragments=False``), ``ping`` (``cancel``, ``data``), ``pong``
    (``data``), ``close`` (``code``, ``description``), ``error`` (``exception``).

    Messages that arrive while no ``message`` listener exists wait for :meth:`receive` (or
    iteration), so greenlet code can read in a blocking style instead.
    """

    EVENTS = ("message", "frame", "ping", "pong", "close", "error")
    # Slots, not a per-instance dict: a server may hold tens of thousands of connections.
    __slots__ = (
        "_chunk",
        "_chunk_next",
        "_close_delivered",
        "_close_timer",
        "_corked",
        "_dispatch_busy",
        "_dispatch_idle",
        "_dispatch_wakes",
        "_dispatcher",
        "_dispatcher_released",
        "_done",
        "_finished",
        "_hub",
        "_inbox",
        "_initial_data",
        "_inline_listener",
        "_inline_watch",
        "_keepalive_timer",
        "_last_received",
        "_parked_dispatcher",
        "_ping_sent_at",
        "_plain_small_frames",
        "_protocol",
        "_queue_space",
        "_raw_socket",
        "_reader",
        "_reading",
        "_received",
        "_received_ready",
        "_resumed",
        "_terminating",
        "_wakes_seen",
        "_write_lock",
        "_write_shut",
        "close_description",
        "close_reason_code",
        "connected",
        "extensions",
        "options",
        "protocol",
        "remote_address",
        "remote_addresses",
        "server",
        "socket",
        "state",
        "web_socket_version",
    )

    CLOSE_REASON_NORMAL = CloseCode.NORMAL
    CLOSE_REASON_GOING_AWAY = CloseCode.GOING_AWAY
    CLOSE_REASON_PROTOCOL_ERROR = CloseCode.PROTOCOL_ERROR
    CLOSE_REASON_UNPROCESSABLE_INPUT = CloseCode.UNPROCESSABLE_INPUT
    CLOSE_REASON_RESERVED = CloseCode.RESERVED
    CLOSE_REASON_NOT_PROVIDED = CloseCode.NOT_PROVIDED
    CLOSE_REASON_ABNORMAL = CloseCode.ABNORMAL
    CLOSE_REASON_INVALID_DATA = CloseCode.INVALID_DATA
    CLOSE_REASON_POLICY_VIOLATION = CloseCode.POLICY_VIOLATION
    CLOSE_REASON_MESSAGE_TOO_BIG = CloseCode.MESSAGE_TOO_BIG
    CLOSE_REASON_EXTENSION_REQUIRED = CloseCode.EXTENSION_REQUIRED
    CLOSE_REASON_INTERNAL_SERVER_ERROR = CloseCode.INTERNAL_SERVER_ERROR
    CLOSE_REASON_TLS_HANDSHAKE_FAILED = CloseCode.TLS_HANDSHAKE_FAILED

    def __init__(
        self,
        sock: Any,
        options: ServerOptions,
        *,
        protocol: str | None = None,
        extensions: Sequence[Extension] = (),
        remote_address: str = "",
        remote_addresses: Sequence[str] = (),
        web_socket_version: int = 13,
        initial_data: bytes = b"",
        server: WebSocketServer | None = None,
    ) -> None:
        super().__init__()
        self.socket = sock
        self.options = options
        #: The subprotocol agreed in the handshake (the client's spelling), or None.
        self.protocol = protocol
        self.extensions = list(extensions)
        self.remote_address = remote_address
        self.remote_addresses = list(remote_addresses) or [remote_address]
        self.web_socket_version = web_socket_version
        self.server = server
        #: ``open``, ``ending`` (we sent Close), ``peer_requested_close`` or ``closed``.
        self.state = OPEN
        #: True until a Close is sent or received or the socket fails.
        self.connected = True
        #: The close status code; -1 while open.
        self.close_reason_code: int = -1
        #: The close description; None while open.
        self.close_description: str | None = None
        self._protocol = WebSocketProtocol(
            max_frame_size=options.max_received_frame_size,
            max_message_size=options.max_received_message_size,
            assemble_fragments=options.assemble_fragments,
            fragment_size=(
                options.fragmentation_threshold if options.fragment_outgoing_messages else None
            ),
            extensions=extensions,
        )
        # Messages up to 125 bytes go out as one frame with a 2-byte header (no extension
        # encodes them, and they are not fragmented): built right in send().
        fragment_size = self._protocol.fragment_size
        self._plain_small_frames = not extensions and (
            fragment_size is None or fragment_size >= 125
        )
        self._initial_data = initial_data
        # Made when a write first has to wait for room (see _send_all): most never do.
        self._write_lock: Semaphore | None = None
        # The plain socket under gevent's, for the non-blocking first try of every send;
        # None for TLS, whose records only gevent's SSL socket can write.
        self._raw_socket: socket.socket | None = (
            None if isinstance(sock, _TLS_SOCKETS) else getattr(sock, "_sock", None)
        )
        self._hub = gevent.get_hub()
        self._reader: Any = None
        self._terminating = False
        self._write_shut = False
        self._reading = False
        self._finished = False
        self._last_received = time.monotonic()
        self._ping_sent_at = 0.0
        self._keepalive_timer: Any = None
        self._close_timer: Any = None
        # Events for the application, in order, and the greenlet that delivers them. It is
        # spawned by the first event and ended by release_idle_dispatcher() (the server calls
        # it periodically) once no event came for a while, so an idle connection holds no
        # greenlet but the reader.
        self._inbox: deque[tuple[str, tuple[Any, ...]]] | None = None
        #: The dispatcher greenlet while it waits for events (parked in the hub), else None.
        self._parked_dispatcher: Any = None
        self._dispatcher: gevent.Greenlet | None = None
        #: True while the dispatcher runs a listener or has events queued.
        self._dispatch_busy = False
        self._dispatch_idle: Event | None = None  # set when _dispatch_busy turns False
        self._dispatch_wakes = 0
        self._wakes_seen = -1
        self._dispatcher_released = False
        #: The reader while it runs listeners itself (see _handle_chunk), else None.
        self._inline_listener: Any = None
        #: A hub callback armed while the reader runs listeners: if the hub gets to run it
        #: before they return, one of them blocked.
        self._inline_watch: Any = None
        #: The events of the chunk being handled and the index of the next one, so that a
        #: new reader takes over the rest when a listener blocks in the old one.
        self._chunk: list[Any] | None = None
        self._chunk_next = 0
        #: Frames sent by the listeners of a chunk of several messages, written together once
        #: the chunk is handled (one system call, not one per message), or as soon as the hub
        #: runs, or before any other write; None when not gathering.
        self._corked: list[bytes] | None = None
        # Messages no listener took, for receive().
        self._received: deque[str | bytes] | None = None
        # The gevent Events below are made when first waited on: most connections never
        # need them, and there may be a great many idle connections.
        self._received_ready: Event | None = None
        self._queue_space: Event | None = None
        #: True once the ``close`` event has been delivered.
        self._close_delivered = False
        self._done: Event | None = None
        self._resumed: Event | None = None
        try:  # noqa: SIM105 (suppress() would cost a context manager per connection)
            sock.setsockopt(
                socket.IPPROTO_TCP, socket.TCP_NODELAY, int(options.disable_nagle_algorithm)
            )
        except OSError:  # not TCP (a UNIX socket): nothing to set
            pass
        if options.keepalive:
            self._arm_keepalive(options.keepalive_interval / 1000.0)

    def __repr__(self) -> str:
        return f"<WebSocketConnection {self.remote_address} {self.state}>"

    # ------------------------------------------------------------------ sending

    def send(self, data: str | bytes | bytearray | memoryview) -> None:
        """Send ``data`` as one message: text for ``str``, binary for bytes-like objects.

        Blocks until the frames are handed to the kernel; from a listener called for one of
        several messages that arrived together, they are handed over with the answers to the
        others once those listeners have run (or as soon as one of them blocks). Raises
        ``TypeError`` for any other type and :class:`~geventws.errors.ConnectionClosedError`
        once the connection closes.
        """
        # This runs for every message sent: no helper calls on the common path.
        if isinstance(data, str):
            opcode = OP_TEXT
            payload: bytes | bytearray | memoryview = data.encode("utf-8")
        elif isinstance(data, _BYTES_LIKE):
            opcode = OP_BINARY
            payload = data
        else:
            raise TypeError(
                f"send() takes str (text) or bytes-like (binary) data, got {type(data).__name__}: "
                f"{data!r:.80}"
            )
        if self.state != OPEN:
            raise ConnectionClosedError(self.close_reason_code, self.close_description)
        size = len(payload)
        if size >= _GATHERED_WRITE_FROM and self._corked is None:
            self._send_gathered(opcode, payload)
            return
        if size <= 125 and self._plain_small_frames:  # encode_data's short path
            frame = _SHORT_FRAME_HEADERS[opcode][size] + payload
        else:
            frame = self._protocol.encode_data(opcode, payload)
        corked = self._corked
        if corked is not None:
            if self._inline_watch is not None:  # the hub has not run since the chunk began
                corked.append(frame)
                return
            self._write(frame)  # after the gathered frames
            return
        # The common case of _write inlined: no write in progress and a socket that takes
        # the frames at once.
        raw = self._raw_socket
        lock = self._write_lock
        if raw is not None and (lock is None or not lock.locked()):
            try:
                sent = raw.send(frame)
            except OSError:  # no room, or a failure: _write waits, or reports it
                sent = 0
            if sent == len(frame):
                return
            if sent:
                self._write(memoryview(frame)[sent:])
                return
        self._write(frame)

    def send_utf(self, data: str) -> None:
        """Send ``data`` as a text message, fragmented as the options say."""
        if not isinstance(data, str):
            raise TypeError(f"send_utf() takes str, got {type(data).__name__}: {data!r:.80}")
        self.send(data)

    def send_bytes(self, data: bytes | bytearray | memoryview) -> None:
        """Send ``data`` as a binary message, fragmented as the options say."""
        if not isinstance(data, _BYTES_LIKE):
            raise TypeError(
                f"send_bytes() takes bytes-like data, got {type(data).__name__}: {data!r:.80}"
            )
        self.send(data)

    def _write_in_background(self, frames: bytes) -> None:
        """Write ``frames`` without making the caller wait for this peer: what the kernel does
        not take at once is written by a greenlet of its own, which holds the write lock until
        done, so later sends still follow in order."""
        if self._corked:
            frames = self._take_corked(frames)
        raw = self._socket_taking_frames_now()
        if raw is None:
            # TLS, or another send in progress: queue behind it, off the caller.
            gevent.spawn(self._write_quietly, frames)
            return
        # No lock taken for this send: it cannot wait, so nothing can come between.
        try:
            sent = raw.send(frames)
        except BlockingIOError:
            sent = 0
        except OSError:
            return  # the reader sees the failure
        if sent != len(frames):
            self._write_rest_in_background(frames, sent)

    def _socket_taking_frames_now(self) -> socket.socket | None:
        """The plain socket when frames may be written straight to it now (not TLS, no write
        waiting for room, no answers being gathered to go first); else None."""
        raw = self._raw_socket
        if raw is None or self._corked is not None or self._write_in_progress():
            return None
        return raw

    def _write_rest_in_background(self, frames: bytes, sent: int) -> None:
        """The plain socket took only ``sent`` bytes of ``frames``: a greenlet of its own
        writes the rest, holding the write lock, so later sends follow in order."""
        lock = self._lock_for_writing()
        lock.acquire()  # free (see above): returns at once
        gevent.spawn(self._finish_write, memoryview(frames)[sent:], lock)

    def _finish_write(self, rest: memoryview, lock: Semaphore) -> None:
        """The rest of a background write, with the write lock already held."""
        try:
            with gevent.Timeout(self.options.send_timeout / 1000.0, _SendTimedOutError):
                self.socket.sendall(rest)
        except _SendTimedOutError:
            self._send_timed_out()
        except OSError:
            pass
        finally:
            lock.release()

    def _write_in_progress(self) -> bool:
        """True while a write waits for room in the socket (others must queue behind it)."""
        lock = self._write_lock
        return lock is not None and lock.locked()

    def _lock_for_writing(self) -> Semaphore:
        """The write lock, made on first need (no switch happens in between, so only one
        is ever made)."""
        lock = self._write_lock
        if lock is None:
            lock = self._write_lock = Semaphore()
        return lock

    def _send_gathered(self, opcode: int, payload: bytes | bytearray | memoryview) -> None:
        """Send a big message with one gathering write of its frame headers and payload
        pieces, so the payload is not copied into frames first; what the socket does not take
        at once is joined and written as usual."""
        parts = self._protocol.encode_data_parts(opcode, payload)
        raw = self._raw_socket
        lock = self._write_lock
        sent = 0
        if (
            raw is not None
            and len(parts) <= _MAX_WRITE_PARTS
            and (lock is None or not lock.locked())
        ):
            try:
                sent = raw.sendmsg(parts)
            except OSError:  # no room, or a failure: _write waits, or reports it
                sent = 0
        rest = _after(parts, sent)
        if rest:
            self._write(rest)

    def ping(self, data: str | bytes = b"") -> None:
        """Send a Ping with ``data`` (at most 125 bytes, else ``ValueError``)."""
        self._send_control(OP_PING, data)

    def pong(self, data: str | bytes = b"") -> None:
        """Send an unsolicited Pong with ``data`` (at most 125 bytes, else ``ValueError``)."""
        self._send_control(OP_PONG, data)

    def _send_control(self, opcode: int, data: str | bytes) -> None:
        payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        frame = self._protocol.encode_control(opcode, payload)
        if self.state != OPEN:
            raise ConnectionClosedError(self.close_reason_code, self.close_description)
        self._write(frame)

    def send_frame(self, frame: Frame) -> None:
        """Send one frame as given (never masked, as a server must not mask).

        Control frames must have FIN and at most 125 bytes (``ValueError`` otherwise).
        """
        if frame.is_control and (len(frame.payload) > 125 or not frame.fin):
            raise ValueError(f"a control frame needs FIN and at most 125 bytes: {frame!r:.120}")
        if self.state != OPEN:
            raise ConnectionClosedError(self.close_reason_code, self.close_description)
        self._write(frame.to_bytes(mask=None) if not frame.masked else frame.to_bytes())

    def _send_all(self, data: bytes | memoryview) -> None:
        """Write ``data`` whole, under the write lock so concurrent senders never interleave.

        The common case, a socket with room, is one non-blocking ``send``; otherwise gevent
        waits for room, at most ``send_timeout`` (then :class:`_SendTimedOutError`).
        """
        if self._corked:
            data = self._take_corked(data)
        raw = self._raw_socket
        rest: bytes | memoryview = data
        lock = self._write_lock  # (_write_in_progress() inlined: this is every send)
        if raw is not None and (lock is None or not lock.locked()):
            # No other write in progress, and a non-blocking send cannot be interrupted:
            # the lock is needed only if the socket does not take it all.
            rest = _unsent(raw, data)
            if not rest:
                return
            raw = None
        with self._lock_for_writing():
            if raw is not None:
                rest = _unsent(raw, data)
                if not rest:
                    return
            with gevent.Timeout(self.options.send_timeout / 1000.0, _SendTimedOutError):
                self.socket.sendall(rest)

    def _take_corked(self, data: bytes | memoryview) -> bytes:
        """Return the gathered frames followed by ``data``, and stop gathering."""
        corked = self._corked or []
        self._corked = None
        corked.append(bytes(data))
        return b"".join(corked)

    def _flush_corked(self) -> None:
        """Write the gathered frames (without waiting for the peer), and stop gathering."""
        corked = self._corked
        self._corked = None
        if corked:
            self._write_in_background(corked[0] if len(corked) == 1 else b"".join(corked))

    def _write(self, data: bytes | memoryview) -> None:
        """Write ``data``; on failure close the connection and raise ConnectionClosedError."""
        try:
            self._send_all(data)
        except _SendTimedOutError:
            self._send_timed_out()
            raise ConnectionClosedError(self.close_reason_code, self.close_description) from None
        except OSError as error:
            self._socket_failed(error, "write")
            if getcurrent() is not self._reader:
                self._terminate()
            raise ConnectionClosedError(self.close_reason_code, self.close_description) from error

    def _write_quietly(self, data: bytes) -> bool:
        """Write ``data``; False if the socket failed (the reader will see it)."""
        try:
            self._send_all(data)
        except _SendTimedOutError:
            self._send_timed_out()
            return False
        except OSError:
            return False
        return True

    def _send_timed_out(self) -> None:
        """The peer read nothing for ``send_timeout``: drop it, without a Close it won't read."""
        logger.info("%r: the peer has not read for send_timeout; dropping it", self)
        if self.state != CLOSED:
            self.state = CLOSED
            self.connected = False
            self.close_reason_code = CloseCode.ABNORMAL
            self.close_description = "Send timed out: the peer is not reading."
            self._cancel_keepalive()
        self._terminate()

    # ------------------------------------------------------------------ closing

    def close(self, code: int = CloseCode.NORMAL, description: str | None = None) -> None:
        """Start the closing handshake with ``code`` and ``description``.

        The description defaults to the code's standard text; ``""`` sends the code alone.
        Raises ``ValueError`` for a code that may not be sent or a description over 123 bytes.
        Does nothing unless the connection is open. Returns once the Close is written; the
        ``close`` event follows when the peer answers or ``close_timeout`` runs out.
        """
        self._close(code, description, wait=True)

    def _close(self, code: int, description: str | None, *, wait: bool) -> None:
        """:meth:`close`; with ``wait=False`` the Close frame is written in the background
        when the socket does not take it at once (closing many connections, one slow
        peer must not hold up the others)."""
        if description is None:
            description = describe(code)
        frame = self._protocol.start_close(code, description)
        if not self.connected:
            return
        self.state = ENDING
        self.connected = False
        self.close_reason_code = int(code)
        self.close_description = description
        self._cancel_keepalive()
        self._arm_close_timer()
        if not wait:
            self._write_in_background(frame)
        elif not self._write_quietly(frame):
            self._terminate()

    def drop(
        self,
        code: int = CloseCode.PROTOCOL_ERROR,
        description: str | None = None,
        skip_close_frame: bool = False,
    ) -> None:
        """Close at once: send a Close with ``code`` (unless ``skip_close_frame``, or a Close was
        already sent), then close the socket without waiting for the peer. The ``close`` event
        reports ``code``."""
        if self.state == CLOSED:
            return
        if description is None:
            description = describe(code)
        # Only one Close per side: none after ours or after answering the peer's.
        send_close = self.state == OPEN and not skip_close_frame
        self.state = CLOSED
        self.connected = False
        self.close_reason_code = int(code)
        self.close_description = description
        self._cancel_keepalive()
        frame = self._protocol.fail(code, description or "")
        if send_close:
            self._write_quietly(frame)
        self._terminate()

    def _terminate(self) -> None:
        """Make the reader close the socket now (or close it here, before reading began)."""
        self._terminating = True
        reader = self._reader
        if reader is None or self._finished:
            return
        if reader is getcurrent():
            if self._inline_listener is reader:
                return  # a listener called us: the reader stops when the listeners return
            raise _Terminate()
        self._hub.loop.run_callback(self._interrupt_reader)

    def _interrupt_reader(self) -> None:
        # Runs in the hub; the reader may have finished meanwhile and be back in pywsgi code.
        # A reader blocked in a listener is not interrupted there: the reading moves on to a
        # new greenlet (its callback came first), which sees _terminating.
        if self._reading and self._inline_listener is not self._reader:
            self._reader.throw(_Terminate)

    def _arm_close_timer(self) -> None:
        if self._close_timer is None:
            self._close_timer = self._hub.loop.timer(self.options.close_timeout / 1000.0)
            self._close_timer.start(self._on_close_timeout)

    def _on_close_timeout(self) -> None:
        logger.debug("%r: no Close from the peer within close_timeout", self)
        self.state = CLOSED
        self._terminate()

    # ------------------------------------------------------------------ keepalive

    def _arm_keepalive(self, delay: float, callback: Callable[[], None] | None = None) -> None:
        if self._keepalive_timer is not None:
            self._keepalive_timer.close()
        timer = self._hub.loop.timer(max(delay, 0.0))
        timer.start(callback or self._on_keepalive_due)
        self._keepalive_timer = timer

    def _cancel_keepalive(self) -> None:
        if self._keepalive_timer is not None:
            self._keepalive_timer.close()
            self._keepalive_timer = None

    def _on_keepalive_due(self) -> None:
        if self.state != OPEN:
            return
        interval = self.options.keepalive_interval / 1000.0
        idle = time.monotonic() - self._last_received
        if idle < interval:
            self._arm_keepalive(interval - idle)
            return
        gevent.spawn(self._send_keepalive_ping)

    def _send_keepalive_ping(self) -> None:
        if self.state != OPEN:
            return
        self._ping_sent_at = time.monotonic()
        if not self._write_quietly(self._protocol.encode_control(OP_PING)):
            return  # the reader sees the broken socket
        if self.options.drop_connection_on_keepalive_timeout:
            self._arm_keepalive(
                self.options.keepalive_grace_period / 1000.0, self._on_grace_period_over
            )
        else:
            self._arm_keepalive(self.options.keepalive_interval / 1000.0)

    def _on_grace_period_over(self) -> None:
        if self.state != OPEN:
            return
        if self._last_received >= self._ping_sent_at:
            interval = self.options.keepalive_interval / 1000.0
            self._arm_keepalive(interval - (time.monotonic() - self._last_received))
            return
        self._cancel_keepalive()
        gevent.spawn(self.drop, CloseCode.ABNORMAL, "Peer not responding.", True)

    # ------------------------------------------------------------------ reading

    def run(self) -> None:
        """Read and handle frames until the connection is closed; then emit ``close``.

        The server calls this in the greenlet that did the HTTP upgrade; it returns once the
        connection is closed.
        """
        self._reader = getcurrent()
        self._read()
        if self._reader is not getcurrent():
            # A listener blocked here, so another greenlet read on. This one is pywsgi's:
            # returning would close the socket, so it waits for the end of the connection.
            self.wait_closed()

    def _read(self) -> None:
        """The reader's loop: read and handle frames until the connection ends (then
        :meth:`_finish`), or until a listener blocks in this greenlet: then a new greenlet
        reads on, and this one delivers the events that come meanwhile, in order."""
        sock = self.socket
        self._reading = True
        moved = False
        peer_closed = False
        try:
            if self._terminating:
                return
            if self._chunk is not None:  # what a blocked listener's reader left of its chunk
                self._handle_events(self._chunk, self._chunk_next)
            if self._initial_data:
                data, self._initial_data = self._initial_data, b""
                self._handle_data(data)
            chunks = 0
            protocol = self._protocol
            # gevent's recv() tries the socket first and waits for readiness only when that
            # fails with EAGAIN. When the last read did not fill the buffer and completed
            # something (it ended most likely between frames), the peer has most likely sent
            # all it had and waits for an answer, so the plain socket's readiness is awaited
            # first: one system call and one exception fewer per message. A read that
            # completed nothing is in the middle of a frame: the rest is on its way and is
            # read at once. Only a guess either way, and a wrong one costs little: the
            # watcher is level-triggered (data that came in meanwhile wakes it at once), and
            # an early read just fails with EAGAIN. TLS goes through gevent's recv(): its
            # records may wait inside the SSL object.
            raw, readable = self._receive_shortcut()
            hub = self._hub
            wake = getcurrent().switch
            # Just upgraded, the client has most likely sent nothing more yet.
            drained = True
            while True:
                if self._resumed is not None:
                    self._resumed.wait()
                try:
                    if raw is None:
                        data = sock.recv(_RECEIVE_SIZE)
                    else:
                        if drained:
                            # A call on purpose: written out here, the C stack that each
                            # parked reader saves grew by about 110 bytes.
                            _wait_until_ready(readable, hub, wake)
                            chunks = 0  # the others had their turn while this one waited
                        while True:
                            try:
                                data = raw.recv(_RECEIVE_SIZE)
                                break
                            except BlockingIOError:
                                pass
                            # Outside the except clause: an exception kept alive while the
                            # connection idles would cost it half a kilobyte.
                            _wait_until_ready(readable, hub, wake)
                            chunks = 0
                        drained = len(data) < _RECEIVE_SIZE
                except OSError as error:
                    self._read_failed(error)
                    return
                if not data:
                    peer_closed = True
                    return
                self._last_received = time.monotonic()
                if self._resumed is not None:  # paused while this chunk was on its way
                    self._resumed.wait()
                events = protocol.receive(data)
                if not events and raw is not None and protocol.payload_pending:
                    try:
                        payload_events = self._read_payload(raw, readable, hub, wake)
                    except OSError as error:
                        self._read_failed(error)
                        return
                    if payload_events is None:
                        peer_closed = True
                        return
                    events = payload_events
                    drained = True  # a big message came: the peer most likely awaits its answer
                if not events:
                    drained = False  # in the middle of a frame
                elif len(events) > 1:
                    self._handle_events(events, 0)
                else:  # (the common case, without the gathering of answers)
                    self._handle_chunk(events, 0)
                chunks += 1
                if chunks >= _CHUNKS_BEFORE_YIELD:
                    chunks = 0
                    # A socket that always has data must not starve the others; sleep(0)
                    # would resume us before the hub polls the other sockets, idle() after.
                    gevent.idle()
        except _Terminate:
            pass
        except _ReaderMoved:
            moved = True
        finally:
            if self._reader is getcurrent():
                self._reading = False
                self._finish(peer_closed=peer_closed)
        if moved:
            self._dispatch_loop()

    def _read_failed(self, error: OSError) -> None:
        """A read failed: report it, unless it is the expected end of a closed connection."""
        if self.state not in (CLOSED, PEER_REQUESTED_CLOSE) or error.errno not in (
            errno.ECONNRESET,
            errno.EBADF,
        ):
            self._socket_failed(error, "read")

    def _read_payload(
        self, raw: socket.socket, readable: Any, hub: Any, wake: Any
    ) -> list[Any] | None:
        """Receive the rest of a big payload straight into the memory of its message (see
        :meth:`WebSocketProtocol.payload_view`): no read buffers, and each read unmasked while
        it is still in the cache. Returns the events that complete it, or None at the peer's
        end of stream; ``OSError`` propagates. Yields to the others as the main loop does."""
        protocol = self._protocol
        reads = 0
        while True:
            if self._resumed is not None:
                self._resumed.wait()
            view = protocol.payload_view()
            try:
                count = raw.recv_into(view)
            except BlockingIOError:
                count = -1
            finally:
                view.release()
            if count == 0:
                return None
            if count < 0:
                _wait_until_ready(readable, hub, wake)
                reads = 0
                continue
            self._last_received = time.monotonic()
            events = protocol.payload_received(count)
            if events or not protocol.payload_pending:
                return events
            reads += 1
            if reads >= _CHUNKS_BEFORE_YIELD:
                reads = 0
                gevent.idle()

    def _receive_shortcut(self) -> tuple[Any, Any]:
        """The plain socket under gevent's and the socket's read watcher; two Nones for TLS,
        a socket with a timeout, or one without these gevent internals (reads then go
        through its ``recv()``)."""
        sock = self.socket
        readable = getattr(sock, "_read_event", None)
        if self._raw_socket is None or readable is None or sock.gettimeout() is not None:
            return None, None
        return self._raw_socket, readable

    def _handle_data(self, data: bytes) -> None:
        self._handle_events(self._protocol.receive(data), 0)

    def _handle_events(self, events: list[Any], start: int) -> None:
        """Handle ``events[start:]``; the answers to several messages are written together."""
        if len(events) - start > 1 and self._raw_socket is not None:
            self._corked = []
            try:
                self._handle_chunk(events, start)
            finally:
                if self._corked is not None:
                    self._flush_corked()
        else:
            self._handle_chunk(events, start)

    def _handle_chunk(self, events: list[Any], start: int) -> None:
        """Handle ``events[start:]``, one by one. A message or frame goes to its listeners
        right here in the reader when nothing waits for delivery before it, whatever its size
        (a big one is then answered while it is still in the cache); else through
        :meth:`_deliver`. If a listener blocks, the hub runs the watch callback first, and
        :meth:`_on_listener_blocked` moves the reading to a new greenlet, which goes on with
        the rest of the chunk (this loop then ends with :class:`_ReaderMoved`)."""
        self._chunk = events
        for index in range(start, len(events)):
            self._chunk_next = index + 1
            event = events[index]
            event_type = type(event)
            if event_type is MessageReceived:
                name = "message"
                item = event.data
            elif event_type is FrameReceived:
                name = "frame"
                item = event.frame
            else:
                self._handle_other_event(event, event_type)
                continue
            listeners = self._listeners.get(name)
            if not listeners or self._dispatch_busy:
                self._deliver(name, item)
                continue
            # The listeners run in the reader (this is every message of most applications).
            reader = self._reader
            self._dispatch_busy = True
            if self._inline_watch is None:
                self._inline_watch = self._hub.loop.run_callback(self._on_listener_blocked)
            self._inline_listener = reader
            try:
                if len(listeners) == 1:  # emit(), given its listeners, for the common case
                    listener = listeners[0]
                    try:
                        listener(item)
                    except Exception:
                        self._listener_raised(name, listener)
                else:
                    self._call_listeners(name, listeners, (item,))
            finally:
                self._inline_listener = None
            if self._reader is not reader:
                raise _ReaderMoved()
            self._dispatch_busy = False
            if self._terminating:  # a listener closed or dropped the connection
                raise _Terminate()
        self._chunk = None
        watch = self._inline_watch
        if watch is not None:  # the listeners of this chunk all returned without blocking
            self._inline_watch = None
            watch.stop()

    def _handle_other_event(self, event: Any, event_type: type) -> None:
        """A Ping, a Pong, the peer's Close or a protocol error, from :meth:`_handle_chunk`."""
        if event_type is PingReceived:
            if self._listeners.get("ping"):
                self._deliver("ping", event.payload)
            elif self.state == OPEN:
                pong = self._protocol.encode_control(OP_PONG, event.payload)
                self._write_quietly(pong)
        elif event_type is PongReceived:
            if self._listeners.get("pong"):
                self._deliver("pong", event.payload)
        elif event_type is CloseReceived:
            self._let_listeners_catch_up()
            self._peer_closed(event)
        elif event_type is ConnectionFailed:
            self._let_listeners_catch_up()
            self._failed(event)

    def _let_listeners_catch_up(self) -> None:
        """Before the peer's Close or a protocol error ends the connection, let the listeners
        handle the events that came before it (at most ``close_timeout``), so that what they
        send in answer (an echo) still goes out, ahead of our Close, as the messages came
        first. Otherwise the connection would be closed before the application even saw them.
        """
        if self._dispatch_busy:
            if self._dispatch_idle is None:
                self._dispatch_idle = Event()
            self._dispatch_idle.clear()
            self._dispatch_idle.wait(self.options.close_timeout / 1000.0)

    def _peer_closed(self, event: CloseReceived) -> None:
        if self.state == OPEN:
            self.state = PEER_REQUESTED_CLOSE
            self.connected = False
            self.close_reason_code = event.code
            self.close_description = event.reason or describe(event.code)
            self._cancel_keepalive()
            if event.reply is not None and not self._send_with_fin(event.reply):
                self._write_quietly(event.reply)
        self._shutdown_write()
        self._arm_close_timer()  # bounds the wait for the peer's FIN

    def _send_with_fin(self, frames: bytes) -> bool:
        """Send ``frames``, then FIN, in one TCP segment: the frames go with ``MSG_MORE``, so
        the kernel holds them until the shutdown right after tacks FIN on (one segment, and
        one ACK from the peer, fewer at the end of every connection). Only where the plain
        socket takes the frames at once; else False, with nothing sent."""
        raw = self._socket_taking_frames_now()
        if raw is None or not _MSG_MORE or self._write_shut:
            return False
        try:
            sent = raw.send(frames, _MSG_MORE)
        except OSError:  # no room, or a failure: the usual write waits, or reports it
            return False
        if sent != len(frames):  # a write without MSG_MORE sends what is held, then the rest
            self._write_quietly(frames[sent:])
        self._shutdown_write()
        return True

    def _failed(self, event: ConnectionFailed) -> None:
        logger.debug("%r failed: %s %s", self, event.code, event.reason)
        # Only one Close per side: a listener may have closed while we waited for it.
        send_close = bool(event.close_frame) and self.state == OPEN
        self.state = CLOSED
        self.connected = False
        self.close_reason_code = event.code
        self.close_description = event.reason
        self._cancel_keepalive()
        if send_close:
            self._write_quietly(event.close_frame)
        raise _Terminate()

    def _shutdown_write(self) -> None:
        """Send FIN (after TLS's close_notify, on a TLS socket), once; reading may go on."""
        if self._write_shut:
            return
        self._write_shut = True
        sock = self.socket
        try:
            if self._raw_socket is None and isinstance(sock, _TLS_SOCKETS):
                _send_close_notify(sock)
            sock.shutdown(socket.SHUT_WR)
        except OSError:  # closed already (by the application, say), or reset by the peer
            pass

    def _socket_failed(self, error: OSError, operation: str) -> None:
        if self.state == CLOSED and self.close_reason_code != -1:
            return
        name = errno.errorcode.get(error.errno or 0, type(error).__name__)
        self.state = CLOSED
        self.connected = False
        self.close_reason_code = CloseCode.ABNORMAL
        self.close_description = f"Socket Error: {operation} {name}"
        self._cancel_keepalive()
        if self._listeners.get("error"):
            self._deliver("error", error)

    def _finish(self, *, peer_closed: bool = False) -> None:
        """Close the socket and report ``close`` once, whatever ended the connection
        (``peer_closed``: the reader saw the peer close its side of TCP)."""
        if self._finished:
            return
        self._finished = True
        self._cancel_keepalive()
        if self._close_timer is not None:
            self._close_timer.close()
            self._close_timer = None
        if self.close_reason_code == -1:
            self.close_reason_code = CloseCode.ABNORMAL
            self.close_description = "Connection dropped by remote peer."
        self.state = CLOSED
        self.connected = False
        self._close_socket(peer_closed=peer_closed)
        if self.server is not None:
            self.server._connection_closed(self)
        if not self._dispatch_busy and getcurrent() is self._reader:
            # Nothing is waiting for delivery: the reader reports the close itself.
            self._dispatcher_released = True
            self._resume_parked_dispatcher()  # an idle dispatcher ends
            self._dispatch_busy = True
            self._emit_close((self.close_reason_code, self.close_description))
            return
        dispatcher_busy = self._dispatch_busy
        self._deliver("close", self.close_reason_code, self.close_description)
        if dispatcher_busy:
            timer = self._hub.loop.timer(self.options.close_timeout / 1000.0)
            timer.start(self._on_dispatch_overdue, timer)

    def _on_dispatch_overdue(self, timer: Any) -> None:
        """A listener still blocks ``close_timeout`` after the connection closed: cancel it
        (GreenletExit) so the ``close`` event is delivered and nothing is held forever."""
        timer.close()
        if self._close_delivered or self._dispatcher is None:
            return
        logger.warning(
            "%r: a listener was still blocked %s ms after the connection closed; cancelling it",
            self,
            self.options.close_timeout,
        )
        stuck = self._dispatcher
        stuck.kill(block=False)  # first, so its cleanup runs before the close event
        self._dispatcher = gevent.spawn(self._dispatch_loop)

    def _close_socket(self, *, peer_closed: bool = False) -> None:
        """FIN, then close. Unless the peer has closed its side (then nothing more can come),
        what it sent meanwhile is read first, so that close() sends FIN, not RST (which could
        destroy our Close)."""
        sock = self.socket
        self._shutdown_write()
        try:
            if not peer_closed:
                sock.settimeout(0.0)
                while sock.recv(_RECEIVE_SIZE):
                    pass
            sock.close()
        except OSError:
            with contextlib.suppress(OSError):
                sock.close()

    # ------------------------------------------------------------------ delivering

    def _deliver(self, event: str, *args: Any) -> None:
        """Queue an event for the dispatcher greenlet, pausing the reader when the application
        lags; a message no listener wants, with nothing queued before it, goes straight to
        :meth:`receive`."""
        if (
            event == "message"
            and not self._dispatch_busy
            and not self._listeners.get("message")
            and getcurrent() is self._reader
        ):
            self._keep_for_receive(args[0])
            return
        inbox = self._inbox
        if inbox is None:
            inbox = self._inbox = deque()
        inbox.append((event, args))
        self._wake_dispatcher()
        if (
            event == "message"
            and self._queued() >= self.options.max_queue
            and getcurrent() is self._reader
        ):
            self._wait_for_queue_space()

    def _on_listener_blocked(self) -> None:
        """Hub callback armed by :meth:`_handle_chunk`: the hub ran, so if the reader is still
        in a listener, that listener is blocked. The blocked greenlet becomes the dispatcher
        (it delivers what comes next once its listener returns) and a new greenlet reads on,
        beginning with the rest of the chunk."""
        self._inline_watch = None
        if self._corked is not None:  # a listener waits: what was sent before must go out
            self._flush_corked()
        blocked = self._inline_listener
        if blocked is None or blocked is not self._reader or self._finished:
            return
        parked = self._parked_dispatcher
        self._parked_dispatcher = None
        self._dispatcher = blocked  # a parked one, replaced, ends when resumed
        if parked is not None:
            self._hub.loop.run_callback(_resume, parked)
        self._reading = False
        self._reader = gevent.spawn(self._read)

    def _keep_for_receive(self, data: str | bytes) -> None:
        """Keep a message no listener takes for :meth:`receive`; the reader waits while
        ``max_queue`` messages are already kept."""
        if self._received is None:
            self._received = deque()
        self._received.append(data)
        if self._received_ready is not None:
            self._received_ready.set()
        if len(self._received) >= self.options.max_queue:
            self._wait_for_queue_space()

    def _wait_for_queue_space(self) -> None:
        """Block the reader while ``max_queue`` messages wait for the application."""
        if self._queue_space is None:
            self._queue_space = Event()
        space = self._queue_space
        space.clear()
        while self.state != CLOSED and self._queued() >= self.options.max_queue:
            space.wait()
            space.clear()

    def _queued(self) -> int:
        """Messages (and other events) received and not yet taken by the application."""
        return len(self._inbox or ()) + len(self._received or ())

    def _wake_dispatcher(self) -> None:
        self._dispatch_busy = True
        self._dispatch_wakes += 1
        if self._dispatcher is None:
            self._dispatcher = gevent.spawn(self._dispatch_loop)
        else:
            self._resume_parked_dispatcher()

    def _resume_parked_dispatcher(self) -> None:
        # The dispatcher parks in the hub (no Event: one wake-up per message is the hot
        # path); it is switched back to from a hub callback, the way gevent's own waits are.
        parked = self._parked_dispatcher
        if parked is not None:
            self._parked_dispatcher = None
            self._hub.loop.run_callback(_resume, parked)

    def release_idle_dispatcher(self) -> None:
        """End the dispatcher greenlet if no event came since the previous call (it is
        spawned again by the next event). Called periodically by the server."""
        if self._dispatcher is None or self._dispatch_busy:
            return
        if self._wakes_seen != self._dispatch_wakes:
            self._wakes_seen = self._dispatch_wakes
            return
        self._dispatcher_released = True
        self._resume_parked_dispatcher()

    def _message_taken(self) -> None:
        if self._queue_space is not None:
            self._queue_space.set()

    def _dispatch_loop(self) -> None:
        """Deliver queued events in order; end when released while idle, or after ``close``."""
        inbox = self._inbox
        if inbox is None:
            inbox = self._inbox = deque()
        hub = self._hub
        try:
            while True:
                if not inbox:
                    self._dispatch_busy = False
                    if self._dispatch_idle is not None:
                        self._dispatch_idle.set()
                    self._parked_dispatcher = getcurrent()
                    hub.switch()
                    if self._dispatcher is not getcurrent():
                        return  # replaced by a greenlet whose listener blocked
                    if self._dispatcher_released:
                        self._dispatcher_released = False
                        if not inbox:
                            self._inbox = None
                            return
                    continue
                event, args = inbox.popleft()
                if event == "message":
                    if not self._listeners.get("message"):
                        if self._received is None:
                            self._received = deque()
                        self._received.append(args[0])
                        if self._received_ready is not None:
                            self._received_ready.set()
                        continue
                    if self._queue_space is not None:
                        self._queue_space.set()
                    self.emit("message", *args)
                elif event == "ping":
                    self._dispatch_ping(args[0])
                elif event == "close":
                    self._emit_close(args)
                    return
                else:
                    self.emit(event, *args)
        finally:
            if self._dispatcher is getcurrent():
                self._dispatcher = None
                self._dispatch_busy = bool(inbox)
                if not inbox and self._dispatch_idle is not None:
                    self._dispatch_idle.set()

    def _emit_close(self, args: tuple[Any, ...]) -> None:
        """Emit ``close`` (on the connection, then the server) and wake every waiter."""
        self.emit("close", *args)
        if self.server is not None:
            self.server.emit("close", self, *args)
        self._close_delivered = True
        for waiting in (self._done, self._received_ready, self._queue_space):
            if waiting is not None:
                waiting.set()
        # Listeners are often bound methods of this connection; dropping them breaks the
        # cycles, so the connection is freed at once instead of at the next full collection.
        self._listeners.clear()

    def _dispatch_ping(self, payload: bytes) -> None:
        cancelled = False

        def cancel() -> None:
            nonlocal cancelled
            cancelled = True

        self.emit("ping", cancel, payload)
        if not cancelled and self.state == OPEN:
            self._write_quietly(self._protocol.encode_control(OP_PONG, payload))

    def _listener_added(self, event: str) -> None:
        if event == "message" and self._received:
            # Messages that waited for a receiver go to the first listener, in order.
            pending = list(self._received)
            self._received.clear()
            if self._inbox is None:
                self._inbox = deque()
            self._inbox.extendleft(("message", (data,)) for data in reversed(pending))
            self._wake_dispatcher()

    def pause(self) -> None:
        """Stop reading: nothing more is read or handled until :meth:`resume`."""
        if self._resumed is None:
            self._resumed = Event()

    def resume(self) -> None:
        """Read again after :meth:`pause`."""
        resumed, self._resumed = self._resumed, None
        if resumed is not None:
            resumed.set()

    @property
    def paused(self) -> bool:
        """True between :meth:`pause` and :meth:`resume`."""
        return self._resumed is not None

    # ------------------------------------------------------------------ blocking style

    def receive(self, timeout: float | None = None) -> str | bytes | None:
        """Return the next message (``str`` or ``bytes``), blocking until one arrives.

        Returns None once the connection is closed and every message was taken, or when
        ``timeout`` seconds pass first. Messages go to ``message`` listeners when there are any.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._received:
            if self._close_delivered:
                return None
            if self._received_ready is None:
                self._received_ready = Event()
            self._received_ready.clear()
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            self._received_ready.wait(remaining)
        message = self._received.popleft()
        self._message_taken()
        return message

    def __iter__(self) -> Iterator[str | bytes]:
        """Iterate over received messages until the connection closes."""
        while True:
            message = self.receive()
            if message is None:
                return
            yield message

    def wait_closed(self, timeout: float | None = None) -> bool:
        """Block until the ``close`` event has been emitted; False if ``timeout`` ran out."""
        if self._close_delivered:
            return True
        if self._done is None:
            self._done = Event()
        return bool(self._done.wait(timeout))


def sockets_taking_frames_now(
    connections: Sequence[WebSocketConnection], sockets: list[socket.socket]
) -> list[socket.socket] | None:
    """``sockets`` (the plain sockets of ``connections``, in the same order) when every one
    of those connections is open and may have frames written straight to its socket now (see
    :meth:`WebSocketConnection._socket_taking_frames_now`); None when one may not.

    The check of that method, made for many connections in one pass: a broadcast runs it for
    every connection, and the calls would cost more than the checks."""
    ready = [
        raw
        for connection, raw in zip(connections, sockets, strict=True)
        if connection.state == OPEN
        and connection._corked is None
        and ((lock := connection._write_lock) is None or not lock.locked())
    ]
    return sockets if len(ready) == len(sockets) else None


def _after(parts: list[bytes | memoryview], sent: int) -> bytes:
    """Return what follows the first ``sent`` bytes of the concatenated ``parts``."""
    for index, part in enumerate(parts):
        size = len(part)
        if sent < size:
            return b"".join([part[sent:], *parts[index + 1 :]])
        sent -= size
    return b""


def _wait_until_ready(watcher: Any, hub: Any, wake: Any) -> None:
    """Park the calling greenlet in the hub until ``watcher`` (a socket's read watcher) fires;
    ``wake`` is the calling greenlet's ``switch``.

    What gevent's socket wait does, without its Waiter and the three calls around it: each
    idle connection's reader waits here, and the C stack that greenlet saves while parked is
    about 1 KiB smaller. An exception thrown in (``_Terminate``; gevent's error when another
    greenlet closes the socket, thrown into the watcher callback's greenlet) propagates.
    """
    watcher.start(wake)
    try:
        hub.switch()
    finally:
        watcher.stop()


def _unsent(raw: socket.socket, data: bytes | memoryview) -> bytes | memoryview:
    """Send what the non-blocking ``raw`` socket takes of ``data`` now; return the rest
    (empty when it took everything)."""
    try:
        sent = raw.send(data)
    except BlockingIOError:
        return data
    return memoryview(data)[sent:] if sent < len(data) else b""


#: TLS sockets (gevent's, and the standard library's): told apart by type, as looking for
#: their ``_sslobj`` on a plain gevent socket costs two AttributeErrors.
_TLS_SOCKETS = (gevent.ssl.SSLSocket, ssl.SSLSocket)


def _send_close_notify(sock: Any) -> None:
    """Send TLS's close_notify (RFC 8446 6.1) without waiting for the peer's."""
    timeout = sock.gettimeout()
    try:
        sock.settimeout(0.0)
        sock.unwrap()  # sends close_notify, then stops at "want read"
    except (OSError, ValueError):
        pass
    finally:
        with contextlib.suppress(OSError):
            sock.settimeout(timeout)


def _resume(parked: Any) -> None:
    """Hub callback: switch to a parked dispatcher, unless it was killed meanwhile."""
    if not parked.dead:
        parked.switch()
