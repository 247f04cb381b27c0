"""A WebSocket load client for the load and soak tests, run as its own process.

    python tests/load_client.py soak --port PORT --connections 5000 --duration 12
    python tests/load_client.py churn --port PORT --total 20000 --concurrency 50

One thread, one epoll, non-blocking sockets, written independently of geventws. Every
connection does the opening handshake and checks ``Sec-WebSocket-Accept``.

``soak``: open every connection (at most ``--connect-concurrency`` handshakes at a time), and
once all are open, each keeps ``--depth`` text messages in flight for ``--duration`` seconds
(or until it has sent ``--messages``), sending a new one for every echo. A message is
``"<connection id> <sequence number> <padding>"`` with random-length padding (mixed-width UTF-8;
now and then a large ASCII one, which the client sends in several fragments and the server sends
back fragmented). Every echo must be the oldest message in flight on that connection, byte for
byte. Then the messages still in flight are awaited (``--drain-timeout``), and every connection
ends with the closing handshake: our Close 1000, the server's Close 1000, then its FIN.

Counting: ``echoed`` are echoes that came back intact and in order; one that overtakes older
messages still counts as echoed, and those older ones count as ``reordered`` when they come
later, as ``lost`` if they never do (as does everything still in flight when a connection
ends); an echo whose bytes differ from what was sent counts as ``corrupted``.

``churn``: ``--total`` connections, ``--concurrency`` at a time: open, one echoed message,
closing handshake, next.

Prints one JSON object on stdout: connections opened (and the most open at once), messages
sent, echoed, lost, reordered, corrupted, errors (a connection that ended otherwise than by the
closing handshake), handshake failures (connect included), clean closes, timings, and the first
few problems in words. Exit status 0 only if nothing went wrong.
The process ends by itself by ``--deadline`` seconds after it started, whatever the server does;
what was unfinished by then counts as errors (and its messages as lost).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import errno
import hashlib
import json
import os
import random
import resource
import select
import signal
import socket
import struct
import sys
import time
from collections import deque
from typing import Any

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)

# Connection states.
CONNECTING, HANDSHAKE, IDLE, OPEN, CLOSING, DONE = range(6)

#: Largest message (in bytes) sent as a single frame; larger ones go out fragmented.
FRAGMENT_OVER = 8192
#: Characters for padding: 1- to 4-byte UTF-8 sequences.
ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:-_éüßçøΩжπ€→✓中文😀🚀"
MAX_ERROR_SAMPLES = 20


def accept_key(key: bytes) -> bytes:
    """The Sec-WebSocket-Accept value for ``key`` (RFC 6455 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


def masked_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A client frame: FIN (or not), ``opcode``, a random mask key, the masked payload."""
    size = len(payload)
    first = (0x80 if fin else 0) | opcode
    if size < 126:
        header = struct.pack("!BB", first, 0x80 | size)
    elif size < 65536:
        header = struct.pack("!BBH", first, 0xFE, size)
    else:
        header = struct.pack("!BBQ", first, 0xFF, size)
    key = random.getrandbits(32).to_bytes(4, "big")
    if not size:
        return header + key
    stream = (key * ((size + 3) // 4))[:size]
    body = (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(size, "big")
    return header + key + body


CLOSE_1000 = struct.pack("!H", 1000)


class Stats:
    """The counters reported at the end."""

    def __init__(self) -> None:
        self.opened = 0
        self.peak_open = 0
        self.open_now = 0
        self.handshake_failures = 0
        self.connect_failures = 0
        self.sent = 0
        self.echoed = 0
        self.lost = 0
        self.reordered = 0
        self.corrupted = 0
        self.errors = 0
        self.closed_clean = 0
        self.big_messages = 0
        self.bytes_sent = 0
        self.bytes_received = 0
        #: Fewest and most echoes one opened connection received.
        self.min_echoes_per_connection: int | None = None
        self.max_echoes_per_connection = 0
        self.error_samples: list[str] = []

    def sample(self, text: str) -> None:
        if len(self.error_samples) < MAX_ERROR_SAMPLES:
            self.error_samples.append(text)


class Conn:
    """One client connection's state."""

    __slots__ = (
        "cid",
        "deadline",
        "echoes",
        "fd",
        "frag_opcode",
        "frag_parts",
        "got_close",
        "inflight",
        "key",
        "out",
        "overtaken",
        "rbuf",
        "seq",
        "sock",
        "state",
        "want_out",
    )

    def __init__(self, cid: int, sock: socket.socket, deadline: float) -> None:
        self.cid = cid
        self.sock = sock
        self.fd = sock.fileno()
        self.state = CONNECTING
        self.deadline = deadline
        self.key = base64.b64encode(os.urandom(16))
        self.rbuf = bytearray()
        self.out = bytearray()
        self.want_out = True
        self.inflight: deque[bytes] = deque()
        self.overtaken: dict[bytes, bytes] = {}
        self.seq = 0
        self.echoes = 0
        self.frag_opcode = 0
        self.frag_parts: list[bytes] = []
        self.got_close = False


class LoadClient:
    """The event loop and the per-connection protocol."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.mode: str = args.mode
        self.stats = Stats()
        self.epoll = select.epoll()
        self.conns: dict[int, Conn] = {}
        self.started = time.monotonic()
        self.hard_deadline = self.started + args.deadline
        self.rng = random.Random(args.seed)
        self.pad_text = "".join(self.rng.choice(ALPHABET) for _ in range(1 << 16))
        self.pad_ascii = "".join(self.rng.choice(ALPHABET[:62]) for _ in range(1 << 16))
        self.launched = 0
        self.pending_handshakes = 0
        self.sending = False
        self.draining = False
        self.steady_started: float | None = None
        self.open_at_steady_start = 0
        self.send_until = 0.0
        self.drain_until = 0.0
        self.timed_out = False
        self.sources = [f"127.0.0.{2 + i}" for i in range(args.source_addresses)]
        self.request_template = (
            f"GET /load HTTP/1.1\r\nHost: {args.host}:{args.port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: "
        ).encode()

    # ------------------------------------------------------------------ messages

    def next_message(self, conn: Conn) -> list[bytes]:
        """The frames of ``conn``'s next message; the message goes into its in-flight queue."""
        rng = self.rng
        conn.seq += 1
        if rng.random() < self.args.big_ratio:
            size = rng.randint(16385, 60000)
            start = rng.randrange(0, len(self.pad_ascii) - size)
            pad = self.pad_ascii[start : start + size]
            self.stats.big_messages += 1
        else:
            size = rng.randint(0, self.args.max_pad)
            start = rng.randrange(0, len(self.pad_text) - size)
            pad = self.pad_text[start : start + size]
        payload = f"{conn.cid} {conn.seq} {pad}".encode()
        conn.inflight.append(payload)
        self.stats.sent += 1
        if len(payload) <= FRAGMENT_OVER:
            return [masked_frame(0x1, payload)]
        frames = []
        offset = 0
        opcode = 0x1
        while offset < len(payload):
            step = rng.randint(1024, FRAGMENT_OVER)
            chunk = payload[offset : offset + step]
            offset += len(chunk)
            frames.append(masked_frame(opcode, chunk, fin=offset >= len(payload)))
            opcode = 0x0
        return frames

    def check_echo(self, conn: Conn, data: bytes) -> None:
        """Account for one echoed message.

        The expected echo is the oldest message in flight. One that comes back ahead of older
        ones counts as echoed and sets those aside as overtaken; an overtaken one that comes
        later counts as reordered; what never comes back is lost (counted when the connection
        ends). A message whose bytes differ from what was sent counts as corrupted.
        """
        inflight = conn.inflight
        if inflight and inflight[0] == data:
            inflight.popleft()
            self.stats.echoed += 1
            conn.echoes += 1
            return
        stats = self.stats
        try:
            cid_text, seq_text, _ = data.split(b" ", 2)
            cid, seq = int(cid_text), int(seq_text)
        except ValueError:
            cid, seq = -1, -1
        prefix = b"%d %d " % (cid, seq)
        if cid == conn.cid:
            for index, payload in enumerate(inflight):
                if payload.startswith(prefix):
                    for _ in range(index):
                        overtaken = inflight.popleft()
                        conn.overtaken[overtaken.split(b" ", 2)[1]] = overtaken
                    inflight.popleft()
                    if payload == data:
                        stats.echoed += 1
                        conn.echoes += 1
                        stats.sample(f"conn {conn.cid}: seq {seq} overtook {index} older ones")
                    else:
                        self.corrupted(conn, data, payload)
                    return
            payload = conn.overtaken.pop(seq_text, b"")
            if payload:
                if payload == data:
                    stats.reordered += 1
                    stats.sample(f"conn {conn.cid}: seq {seq} came back after younger ones")
                else:
                    self.corrupted(conn, data, payload)
                return
        self.corrupted(conn, data, None)

    def corrupted(self, conn: Conn, data: bytes, sent: bytes | None) -> None:
        self.stats.corrupted += 1
        if sent is None:
            what = f"matches nothing sent: {data[:40]!r}"
        else:
            pairs = enumerate(zip(data, sent, strict=False))
            index = next((i for i, (got, want) in pairs if got != want), min(len(data), len(sent)))
            what = f"{len(data)} bytes for {len(sent)} sent, first difference at {index}"
        self.stats.sample(f"conn {conn.cid}: corrupted echo: {what}")

    # ------------------------------------------------------------------ sockets

    def launch(self) -> None:
        """Start one more connection."""
        cid = self.launched
        self.launched += 1
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        except OSError as error:  # out of descriptors
            self.stats.connect_failures += 1
            self.stats.handshake_failures += 1
            self.stats.sample(f"conn {cid}: socket(): {error}")
            return
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.sources:
            sock.setsockopt(socket.IPPROTO_IP, _IP_BIND_ADDRESS_NO_PORT, 1)
            try:
                sock.bind((self.sources[cid % len(self.sources)], 0))
            except OSError as error:
                sock.close()
                self.stats.connect_failures += 1
                self.stats.handshake_failures += 1
                self.stats.sample(f"conn {cid}: bind(): {error}")
                return
        conn = Conn(cid, sock, time.monotonic() + self.args.handshake_timeout)
        self.pending_handshakes += 1
        self.conns[conn.fd] = conn
        code = sock.connect_ex((self.args.host, self.args.port))
        if code not in (0, errno.EINPROGRESS):
            self.fail(conn, f"connect: {errno.errorcode.get(code, code)}")
            return
        self.epoll.register(conn.fd, select.EPOLLOUT | select.EPOLLIN)

    def write(self, conn: Conn, data: bytes) -> None:
        """Send ``data`` now if the socket takes it, else queue it for EPOLLOUT."""
        if conn.out:
            conn.out += data
            return
        try:
            sent = conn.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as error:
            self.fail(conn, f"send: {error}")
            return
        self.stats.bytes_sent += sent
        if sent < len(data):
            conn.out += data[sent:]
            self.update_interest(conn)

    def flush(self, conn: Conn) -> None:
        try:
            sent = conn.sock.send(conn.out)
        except BlockingIOError:
            return
        except OSError as error:
            self.fail(conn, f"send: {error}")
            return
        self.stats.bytes_sent += sent
        del conn.out[:sent]
        self.update_interest(conn)

    def update_interest(self, conn: Conn) -> None:
        want_out = bool(conn.out)
        if want_out != conn.want_out and conn.state != DONE:
            conn.want_out = want_out
            self.epoll.modify(conn.fd, select.EPOLLIN | (select.EPOLLOUT if want_out else 0))

    def finish(self, conn: Conn) -> None:
        """Forget ``conn`` and close its socket."""
        if conn.state == DONE:
            return
        if conn.state in (CONNECTING, HANDSHAKE):
            self.pending_handshakes -= 1
        elif conn.state in (IDLE, OPEN, CLOSING):
            stats = self.stats
            stats.open_now -= 1
            lost = len(conn.inflight) + len(conn.overtaken)
            if lost:
                stats.lost += lost
                stats.sample(f"conn {conn.cid}: {lost} messages never came back")
            if stats.min_echoes_per_connection is None:
                stats.min_echoes_per_connection = conn.echoes
            stats.min_echoes_per_connection = min(stats.min_echoes_per_connection, conn.echoes)
            stats.max_echoes_per_connection = max(stats.max_echoes_per_connection, conn.echoes)
        conn.state = DONE
        del self.conns[conn.fd]
        with contextlib.suppress(OSError, ValueError):
            self.epoll.unregister(conn.fd)
        conn.sock.close()

    def fail(self, conn: Conn, reason: str) -> None:
        """An unexpected end: count it as an error (or handshake failure) and drop the socket."""
        stats = self.stats
        if conn.state == DONE:
            return
        if conn.state == CONNECTING:
            stats.connect_failures += 1
            stats.handshake_failures += 1
        elif conn.state == HANDSHAKE:
            stats.handshake_failures += 1
        else:
            stats.errors += 1
        stats.sample(f"conn {conn.cid} ({_STATE_NAMES[conn.state]}): {reason}")
        self.finish(conn)

    # ------------------------------------------------------------------ protocol

    def on_writable(self, conn: Conn) -> None:
        if conn.state == CONNECTING:
            code = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                self.fail(conn, f"connect: {errno.errorcode.get(code, code)}")
                return
            conn.state = HANDSHAKE
            conn.want_out = False
            self.epoll.modify(conn.fd, select.EPOLLIN)
            self.write(conn, self.request_template + conn.key + b"\r\n\r\n")
            return
        if conn.out:
            self.flush(conn)

    def on_readable(self, conn: Conn) -> None:
        try:
            data = conn.sock.recv(262144)
        except BlockingIOError:
            return
        except OSError as error:
            self.fail(conn, f"recv: {error}")
            return
        if not data:
            self.on_eof(conn)
            return
        self.stats.bytes_received += len(data)
        conn.rbuf += data
        if conn.state == HANDSHAKE:
            self.read_handshake(conn)
        if conn.state in (IDLE, OPEN, CLOSING) and conn.rbuf:
            self.read_frames(conn)

    def read_handshake(self, conn: Conn) -> None:
        end = conn.rbuf.find(b"\r\n\r\n")
        if end < 0:
            if len(conn.rbuf) > 16384:
                self.fail(conn, "response head too large")
            return
        head = bytes(conn.rbuf[:end]).decode("latin-1")
        del conn.rbuf[: end + 4]
        lines = head.split("\r\n")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        problem = None
        if not lines[0].startswith("HTTP/1.1 101 "):
            problem = f"status line {lines[0]!r}"
        elif headers.get("sec-websocket-accept", "").encode() != accept_key(conn.key):
            problem = f"wrong Sec-WebSocket-Accept {headers.get('sec-websocket-accept')!r}"
        elif headers.get("upgrade", "").lower() != "websocket":
            problem = f"Upgrade header {headers.get('upgrade')!r}"
        elif "upgrade" not in headers.get("connection", "").lower():
            problem = f"Connection header {headers.get('connection')!r}"
        if problem:
            self.fail(conn, problem)
            return
        stats = self.stats
        self.pending_handshakes -= 1
        stats.opened += 1
        stats.open_now += 1
        stats.peak_open = max(stats.peak_open, stats.open_now)
        if self.mode == "churn":
            conn.state = OPEN
            conn.deadline = time.monotonic() + self.args.churn_timeout
            self.write(conn, b"".join(self.next_message(conn)))
        elif self.sending:
            self.start_sending(conn)
        else:
            conn.state = IDLE
            conn.deadline = self.hard_deadline

    def start_sending(self, conn: Conn) -> None:
        conn.state = OPEN
        conn.deadline = self.hard_deadline
        frames: list[bytes] = []
        for _ in range(self.to_send(conn)):
            frames += self.next_message(conn)
        self.write(conn, b"".join(frames))

    def to_send(self, conn: Conn) -> int:
        """How many messages ``conn`` sends now: enough to have ``--depth`` in flight, but no
        more than ``--messages`` in all."""
        count = self.args.depth - len(conn.inflight)
        if self.args.messages:
            count = min(count, self.args.messages - conn.seq)
        return count

    def read_frames(self, conn: Conn) -> None:
        buf = conn.rbuf
        pos = 0
        size_all = len(buf)
        replies: list[bytes] = []
        while size_all - pos >= 2:
            first = buf[pos]
            second = buf[pos + 1]
            length = second & 0x7F
            header = 2
            if length == 126:
                if size_all - pos < 4:
                    break
                length = (buf[pos + 2] << 8) | buf[pos + 3]
                header = 4
            elif length == 127:
                if size_all - pos < 10:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                header = 10
            if second & 0x80:
                self.protocol_error(conn, "the server masked a frame")
                return
            if size_all - pos < header + length:
                break
            payload = bytes(buf[pos + header : pos + header + length])
            pos += header + length
            if first & 0x70:
                self.protocol_error(conn, f"RSV bits set: {first:#x}")
                return
            if not self.handle_frame(conn, first & 0x80, first & 0x0F, payload, replies):
                return
        if pos:
            del buf[:pos]
        if replies and conn.state != DONE:
            self.write(conn, b"".join(replies))

    def protocol_error(self, conn: Conn, reason: str) -> None:
        self.stats.corrupted += 1
        self.fail(conn, reason)

    def handle_frame(
        self, conn: Conn, fin: int, opcode: int, payload: bytes, replies: list[bytes]
    ) -> bool:
        """Handle one server frame; False once ``conn`` is finished."""
        if opcode >= 0x8:
            if opcode == 0x8:
                return self.on_close_frame(conn, payload)
            if opcode == 0x9 and conn.state in (IDLE, OPEN):
                replies.append(masked_frame(0xA, payload))
            return True
        if opcode == 0x0:
            if not conn.frag_opcode:
                self.protocol_error(conn, "continuation frame without a first frame")
                return False
            conn.frag_parts.append(payload)
            if not fin:
                return True
            opcode, payload = conn.frag_opcode, b"".join(conn.frag_parts)
            conn.frag_opcode, conn.frag_parts = 0, []
        elif conn.frag_opcode:
            self.protocol_error(conn, "new message inside a fragmented one")
            return False
        elif not fin:
            conn.frag_opcode, conn.frag_parts = opcode, [payload]
            return True
        if conn.state == IDLE:
            self.stats.corrupted += 1
            self.stats.sample(f"conn {conn.cid}: a message before any was sent")
            return True
        if opcode == 0x1:
            self.check_echo(conn, payload)
        else:
            self.stats.corrupted += 1
            self.stats.sample(f"conn {conn.cid}: an echo came back with opcode {opcode}")
            if conn.inflight and conn.inflight[0] == payload:
                conn.inflight.popleft()
        if conn.state == OPEN:
            if self.mode == "churn":
                if not conn.inflight:
                    self.send_close(conn)
            elif self.sending and self.to_send(conn) > 0:
                for _ in range(self.to_send(conn)):
                    replies += self.next_message(conn)
            elif not conn.inflight:
                self.send_close(conn)
        return True

    def send_close(self, conn: Conn) -> None:
        """Start the closing handshake with 1000."""
        if conn.state in (IDLE, OPEN):
            conn.state = CLOSING
            conn.deadline = min(time.monotonic() + self.args.close_timeout, self.hard_deadline)
            self.write(conn, masked_frame(0x8, CLOSE_1000))

    def on_close_frame(self, conn: Conn, payload: bytes) -> bool:
        code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
        if conn.state != CLOSING:
            self.fail(conn, f"unexpected Close from the server: {code} {payload[2:]!r}")
            return False
        if code != 1000:
            self.fail(conn, f"the server answered our Close 1000 with {code} {payload[2:]!r}")
            return False
        conn.got_close = True
        return True

    def on_eof(self, conn: Conn) -> None:
        if conn.state == CLOSING and conn.got_close:
            if conn.rbuf or conn.out:
                self.fail(conn, f"EOF with {len(conn.rbuf)} bytes unread, {len(conn.out)} unsent")
                return
            self.stats.closed_clean += 1
            self.finish(conn)
            return
        self.fail(conn, "EOF from the server")

    # ------------------------------------------------------------------ phases

    def expire(self, now: float) -> None:
        """Fail every connection past its own deadline."""
        for conn in [c for c in self.conns.values() if c.deadline <= now]:
            if conn.state == IDLE and not self.sending:
                continue
            what = {
                CONNECTING: "connect timed out",
                HANDSHAKE: "no handshake response in time",
                OPEN: f"{len(conn.inflight)} echoes still missing in time",
                CLOSING: "closing handshake not finished in time"
                + ("" if conn.got_close else " (no Close from the server)"),
            }.get(conn.state, "timed out")
            self.fail(conn, what)

    def run(self) -> dict[str, Any]:
        args = self.args
        total = args.connections if self.mode == "soak" else args.total
        limit = args.connect_concurrency if self.mode == "soak" else args.concurrency
        next_expiry = 0.0
        ramp_done: float | None = None
        connected = select.EPOLLOUT | select.EPOLLERR | select.EPOLLHUP
        readable = select.EPOLLIN | select.EPOLLERR | select.EPOLLHUP
        while True:
            now = time.monotonic()
            if now >= self.hard_deadline:
                self.timed_out = True
                break
            in_use = self.pending_handshakes if self.mode == "soak" else len(self.conns)
            while self.launched < total and in_use < limit:
                self.launch()
                in_use += 1
            if self.mode == "soak":
                if ramp_done is None and self.launched == total and not self.pending_handshakes:
                    ramp_done = now
                    self.begin_steady(now)
                if self.sending and now >= self.send_until:
                    self.begin_drain(now)
                if self.draining and now >= self.drain_until:
                    self.end_drain()
            if self.launched == total and not self.conns:
                break
            if now >= next_expiry:
                self.expire(now)
                next_expiry = now + 0.25
            timeout = min(0.25, max(self.hard_deadline - now, 0.0))
            for fd, events in self.epoll.poll(timeout, 1024):
                conn = self.conns.get(fd)
                if conn is None:
                    continue
                if conn.state == CONNECTING:
                    if events & connected:
                        self.on_writable(conn)  # SO_ERROR tells success from failure
                    continue
                if events & readable:
                    self.on_readable(conn)  # data, EOF or the error
                    if conn.state == DONE:
                        continue
                if events & select.EPOLLOUT and conn.out:
                    self.flush(conn)
        for conn in list(self.conns.values()):
            self.fail(conn, "hard deadline reached")
        elapsed = time.monotonic() - self.started
        report: dict[str, Any] = {"mode": self.mode}
        stats = vars(self.stats).copy()
        stats.pop("open_now")
        report.update(stats)
        report.update(
            requested=total,
            launched=self.launched,
            elapsed=round(elapsed, 3),
            timed_out=self.timed_out,
            rlimit_nofile=resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        )
        busy = elapsed
        if self.mode == "soak":
            report["ramp_seconds"] = round((ramp_done or now) - self.started, 3)
            report["open_at_steady_start"] = self.open_at_steady_start
            if self.steady_started is not None:
                busy = min(now, self.send_until) - self.steady_started
            report["steady_seconds"] = round(busy, 3)
        report["echoes_per_second"] = round(self.stats.echoed / max(busy, 1e-9))
        return report

    def begin_steady(self, now: float) -> None:
        self.sending = True
        self.steady_started = now
        self.send_until = now + self.args.duration
        self.open_at_steady_start = self.stats.open_now
        for conn in list(self.conns.values()):
            if conn.state == IDLE:
                self.start_sending(conn)

    def begin_drain(self, now: float) -> None:
        self.sending = False
        self.draining = True
        self.drain_until = now + self.args.drain_timeout
        for conn in list(self.conns.values()):
            if conn.state == OPEN:
                conn.deadline = self.drain_until + self.args.close_timeout
                if not conn.inflight:
                    self.send_close(conn)

    def end_drain(self) -> None:
        self.draining = False
        for conn in list(self.conns.values()):
            if conn.state == OPEN:
                self.send_close(conn)


_STATE_NAMES = {
    CONNECTING: "connecting",
    HANDSHAKE: "handshake",
    IDLE: "idle",
    OPEN: "open",
    CLOSING: "closing",
    DONE: "done",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["soak", "churn"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, default=5000, help="soak: connections")
    parser.add_argument("--duration", type=float, default=10.0, help="soak: seconds of echoing")
    parser.add_argument("--depth", type=int, default=4, help="soak: messages in flight per conn")
    parser.add_argument(
        "--messages", type=int, default=0, help="soak: stop a connection after this many (0: no)"
    )
    parser.add_argument("--max-pad", type=int, default=400, help="padding characters, at most")
    parser.add_argument("--big-ratio", type=float, default=0.002, help="share of large messages")
    parser.add_argument("--connect-concurrency", type=int, default=100, help="soak: handshakes")
    parser.add_argument("--total", type=int, default=1000, help="churn: connections in all")
    parser.add_argument("--concurrency", type=int, default=50, help="churn: at a time")
    parser.add_argument("--handshake-timeout", type=float, default=30.0)
    parser.add_argument("--drain-timeout", type=float, default=15.0)
    parser.add_argument("--close-timeout", type=float, default=15.0)
    parser.add_argument("--churn-timeout", type=float, default=15.0, help="churn: echo wait")
    parser.add_argument("--source-addresses", type=int, default=0, help="bind to 127.0.0.2...")
    parser.add_argument("--deadline", type=float, default=120.0, help="hard limit, seconds")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    if args.max_pad > 4000:
        parser.error("--max-pad must be at most 4000 (messages stay under one frame limit)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Backstop: SIGALRM's default action ends the process even if the loop is stuck.
    signal.alarm(int(args.deadline) + 15)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        with open("/proc/sys/fs/nr_open") as nr_open:
            hard = int(nr_open.read())
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(
                resource.RLIMIT_NOFILE, (hard, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
            )
    report = LoadClient(args).run()
    json.dump(report, sys.stdout)
    sys.stdout.write("\n")
    sys.stdout.flush()
    clean = not (
        report["lost"]
        or report["reordered"]
        or report["corrupted"]
        or report["errors"]
        or report["handshake_failures"]
        or report["timed_out"]
    )
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
