"""The header block of an HTTP/1.1 request, read for pywsgi without the email parser.

pywsgi reads headers with :func:`http.client.parse_headers`, which feeds them through
:mod:`email`'s general MIME parser: a sixth of the CPU time of a WebSocket handshake went
there. Request header fields are simpler than MIME (RFC 9112 5): ``name ":" OWS value OWS``
per line, the name a token. So :func:`read_header_block` splits the lines itself and returns
the same kind of object pywsgi keeps in ``handler.headers`` (an
:class:`http.client.HTTPMessage` with pywsgi's extra members), filled directly.

Differences, all on malformed input: a line that is not ``token ":" value`` gets 400 (the
email parser silently ended the headers there and dropped the rest), and obsolete line
folding is replaced by a space, as RFC 9112 5.2 allows (the email parser kept the CRLF).
"""

from __future__ import annotations

import http.client
import re
from collections.abc import Iterator
from typing import Any

from .handshake import Headers

#: The limits of :func:`http.client.parse_headers`, kept.
_MAX_LINE = 65536
_MAX_HEADERS = 100
_TOKEN_CHARACTERS = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]"
_TOKEN = re.compile(_TOKEN_CHARACTERS + "+")
#: Header lines joined by CRLF, none empty, holding no other CR or LF: each a field
#: (``token ":" ...``), or after the first one, a continuation (starting with SP or HTAB).
_WELL_FORMED_LINES = re.compile(
    rf"{_TOKEN_CHARACTERS}+:[^\r\n]*(?:\r\n(?:{_TOKEN_CHARACTERS}+:|[ \t])[^\r\n]*)*"
)
_END = (b"\r\n", b"\n", b"")
_OWS = " \t\r\n"


class HeaderBlock(http.client.HTTPMessage):
    """Request headers as pywsgi uses them (``get``, ``getheader``, ``headers``, ``status``).

    ``status`` is ``""``, or a complaint that makes pywsgi answer 400.
    """

    def __init__(self) -> None:
        super().__init__()
        self.status = ""
        #: How many bytes past the block the reader still held when the block was taken
        #: from it in one piece; None when that is not known.
        self.unread_after: int | None = None
        # The fields as read, and the same as Headers (indexed by lower-cased name). They
        # serve get() and request_headers() for as long as the fields are unchanged (pywsgi
        # deletes Content-Length from a chunked request, for one).
        self._read_fields: list[tuple[str, str]] = []
        self._read_headers: Headers | None = None

    def _unchanged_headers(self) -> Headers | None:
        """The fields as :class:`~geventws.handshake.Headers` if they are still as read."""
        if self._headers == self._read_fields:  # type: ignore[attr-defined]
            return self._read_headers
        return None

    def get(self, name: str, failobj: Any = None) -> Any:
        """The first value of ``name`` (any case), or ``failobj``: as ``email``'s ``get``,
        without its policy machinery (values are plain strings here)."""
        wanted = name.lower()
        headers = self._unchanged_headers()
        if headers is not None:
            value = headers._first(wanted)
            return failobj if value is None else value
        for field, value in self._headers:  # type: ignore[attr-defined]
            if field.lower() == wanted:
                return value
        return failobj

    def getheader(self, name: str, default: Any = None) -> Any:
        """The first value of ``name``, or ``default`` (pywsgi's older API)."""
        return self.get(name, default)

    @property
    def headers(self) -> Iterator[str]:
        """The fields as ``"Name: value\\r\\n"`` lines (pywsgi's older API)."""
        for name, value in self._headers:  # type: ignore[attr-defined]
            yield f"{name}: {value}\r\n"

    @property
    def typeheader(self) -> str | None:
        """The ``Content-Type`` value, or None."""
        value = self.get("content-type")
        return None if value is None else str(value)

    def fields(self) -> list[tuple[str, str]]:
        """The fields in order, as ``(name, value)`` pairs."""
        return list(self._headers)  # type: ignore[attr-defined]

    def request_headers(self) -> Headers:
        """The fields as :class:`~geventws.handshake.Headers` (the same object each time
        while they are unchanged; do not modify it)."""
        headers = self._unchanged_headers()
        return headers if headers is not None else Headers(self.fields())


class HeadTooLargeError(ValueError):
    """The request head is over its size limit."""


def check_head_line(line: bytes) -> None:
    """Raise ``ValueError`` unless ``line`` (as read, line end included) is a complete line
    of a request head: ending with LF, with no CR but one right before that LF."""
    if not line.endswith(b"\n"):
        raise ValueError("request head cut short before its empty line")
    # RFC 9112 2.2: a bare CR is no line end; the email parser would split on it and let a
    # header hide inside another one. (find, not `in`: bytes.__contains__ first tries the
    # operand as an int and pays for the TypeError.)
    first_cr = line.find(b"\r")
    if first_cr != -1 and first_cr != len(line) - 2:
        raise ValueError("bare CR in a header line")


def read_header_block(rfile: Any, size_limit: int | None = None) -> HeaderBlock:
    """Read header lines from ``rfile`` up to the empty line that ends them.

    A malformed line raises ``ValueError`` (pywsgi answers 400); a line over 64 KiB or more
    than 100 fields set :attr:`HeaderBlock.status` (also 400), as pywsgi's own reader does.
    With ``size_limit`` (the bytes left for a request head), the lines may take no more
    (else :class:`HeadTooLargeError`) and each must pass :func:`check_head_line`, the empty
    one included.

    When ``rfile`` can peek (a buffered reader, as pywsgi's is) and already holds the whole
    block, the block is taken in one piece, with the same outcome; then
    :attr:`HeaderBlock.unread_after` tells how many bytes ``rfile`` still holds after it.
    """
    block = HeaderBlock()
    fields = _read_whole_block(rfile, size_limit, block)
    if fields is None:
        fields = _read_line_by_line(rfile, size_limit, block)
    block._headers = fields  # type: ignore[attr-defined]
    # Both readers leave values as Headers would: stripped, any folding made one line.
    block._read_fields = list(fields)
    block._read_headers = Headers._from_clean(block._read_fields)
    return block


def _read_whole_block(
    rfile: Any, size_limit: int | None, block: HeaderBlock
) -> list[tuple[str, str]] | None:
    """The fields of a block ``rfile`` holds complete, taken from it in one piece; None,
    with nothing taken, when it does not hold it all or when a line needs the care of the
    line-by-line reader (a bare CR or LF, a limit reached, a malformed line)."""
    peek = getattr(rfile, "peek", None)
    if peek is None:
        return None
    buffered: bytes = peek()  # waits for the first bytes, as readline() would
    end = -2 if buffered.startswith(b"\r\n") else buffered.find(b"\r\n\r\n")
    size = end + 4
    if end == -1 or size > _MAX_LINE or (size_limit is not None and size > size_limit):
        return None
    fields: list[tuple[str, str]] = []
    if end > 0:  # else no field at all
        head = buffered[:end]
        line_ends = head.count(b"\r\n")
        if (
            head.count(b"\r") != line_ends
            or head.count(b"\n") != line_ends
            or line_ends >= _MAX_HEADERS
        ):
            return None
        text = head.decode("latin-1")
        if not _WELL_FORMED_LINES.fullmatch(text):
            return None  # the line-by-line reader says what is wrong, having read up to it
        # As _add_line() does, without its checks: the expression above made them all.
        for line in text.split("\r\n"):
            if line[0] in " \t":
                name, value = fields[-1]
                fields[-1] = (name, value + " " + line.strip(_OWS))
            else:
                name, _, value = line.partition(":")
                fields.append((name, value.strip(_OWS)))
    rfile.read(size)
    block.unread_after = len(buffered) - size
    return fields


def _read_line_by_line(
    rfile: Any, size_limit: int | None, block: HeaderBlock
) -> list[tuple[str, str]]:
    fields: list[tuple[str, str]] = []
    readline = rfile.readline
    left = size_limit
    while True:
        line = readline(_MAX_LINE + 1)
        if left is not None:
            left -= len(line)
            if left < 0:
                raise HeadTooLargeError("request head too large")
            check_head_line(line)
        if len(line) > _MAX_LINE:
            block.status = "Line too long"
            break
        if line in _END:
            break
        if not _add_line(fields, line.decode("latin-1")):
            block.status = f"got more than {_MAX_HEADERS} headers"
            break
    return fields


def _add_line(fields: list[tuple[str, str]], text: str) -> bool:
    """Add the header line ``text`` to ``fields``: a new field, or more of the last one's
    value (obsolete folding). ``ValueError`` for a malformed line; False, adding nothing,
    for a field past the 100th."""
    if text[0] in " \t":
        if not fields:
            raise ValueError(f"header block starts with a continuation line: {text!r}")
        name, value = fields[-1]
        fields[-1] = (name, value + " " + text.strip(_OWS))
        return True
    name, colon, value = text.partition(":")
    if not colon or not _TOKEN.fullmatch(name):
        raise ValueError(f"malformed header line: {text!r}")
    if len(fields) == _MAX_HEADERS:
        return False
    fields.append((name, value.strip(_OWS)))
    return True


__all__ = ["HeadTooLargeError", "HeaderBlock", "check_head_line", "read_header_block"]
