"""The server side of the WebSocket opening handshake (RFC 6455 section 4.2), without I/O.

:func:`parse_handshake` turns a request line and headers into a :class:`HandshakeRequest` or
a :class:`~geventws.errors.HandshakeError` carrying the HTTP answer to send;
:func:`build_accept_response` and :func:`build_reject_response` produce the bytes of the
answers. Nothing here touches a socket.

The checks are stricter than WebSocket-Node's (see ``decisions.md``): method, HTTP version,
``Upgrade`` and ``Connection`` tokens and the key's format are verified too, but where Node
has a message for a refusal, the same text is used.
"""

from __future__ import annotations

import binascii
import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from email.message import Message
from http import HTTPStatus
from urllib.parse import parse_qsl, urlsplit

from . import header_lists
from .cookies import Cookie, parse_cookie_header
from .errors import HandshakeError
from .header_lists import RequestedExtension, check_subprotocol, is_token, parse_protocols

WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_key(key: str) -> str:
    """Return the ``Sec-WebSocket-Accept`` value for a client's ``Sec-WebSocket-Key``.

    That is base64(SHA-1(key + :data:`WEBSOCKET_GUID`)), RFC 6455 section 4.2.2.
    """
    return _accept_value(key).decode("ascii")


def _accept_value(key: str) -> bytes:
    digest = hashlib.sha1((key + WEBSOCKET_GUID).encode("utf-8"), usedforsecurity=False)
    return binascii.b2a_base64(digest.digest(), newline=False)


# Node's http module keeps only the first of these when a request repeats them
# (IncomingMessage._addHeaderLine); every other header is joined with ", ", Cookie with "; ".
_FIRST_ONLY = frozenset(
    {
        "age",
        "authorization",
        "content-length",
        "content-type",
        "etag",
        "expires",
        "from",
        "host",
        "if-modified-since",
        "if-unmodified-since",
        "last-modified",
        "location",
        "max-forwards",
        "proxy-authorization",
        "referer",
        "retry-after",
        "server",
        "user-agent",
    }
)
_OBS_FOLD = re.compile(r"\r?\n[ \t]+")


def _index_by_name(items: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Map each lower-cased header name to its values, in order."""
    by_name: dict[str, list[str]] = {}
    for name, value in items:
        lowered = name.lower()
        values = by_name.get(lowered)
        if values is None:
            by_name[lowered] = [value]
        else:
            values.append(value)
    return by_name


class Headers:
    """Request headers: a case-insensitive multi-dict that remembers order and spelling.

    Values are stored with surrounding spaces and tabs removed and any obsolete line folding
    replaced by a space. :meth:`get` combines repeated headers the way Node's http module
    does, so a request reads the same as it would in WebSocket-Node.
    """

    __slots__ = ("_by_name", "_items")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        cleaned: list[tuple[str, str]] = []
        for name, value in items:
            text = str(value)
            if "\n" in text:
                text = _OBS_FOLD.sub(" ", text)
            cleaned.append((name, text.strip(" \t")))
        self._items = cleaned
        self._by_name = _index_by_name(cleaned)

    @classmethod
    def _from_clean(cls, items: list[tuple[str, str]]) -> Headers:
        """Headers of ``items`` whose values are as :meth:`__init__` would leave them (no
        line break, no space or tab at either end); ``items`` is kept, not copied."""
        headers = cls.__new__(cls)
        headers._items = items
        headers._by_name = _index_by_name(items)
        return headers

    @classmethod
    def from_message(cls, message: Message) -> Headers:
        """Build from an :class:`email.message.Message` (such as the
        :class:`http.client.HTTPMessage` gevent's ``WSGIHandler`` keeps in ``self.headers``)."""
        return cls((name, str(value)) for name, value in message.items())

    def get(self, name: str) -> str | None:
        """Return the value of header ``name`` (any case), or ``None`` if absent.

        Repeated headers are joined with ``", "`` (``"; "`` for ``Cookie``), except those
        Node's http module keeps only once, such as ``Host``, where the first one wins.
        """
        lowered = name.lower()
        values = self._by_name.get(lowered)
        if values is None:
            return None
        if len(values) == 1 or lowered in _FIRST_ONLY:
            return values[0]
        return ("; " if lowered == "cookie" else ", ").join(values)

    def _first(self, lowered_name: str) -> str | None:
        """The first value of the header named ``lowered_name`` (lower case), or None."""
        values = self._by_name.get(lowered_name)
        return None if values is None else values[0]

    def get_all(self, name: str) -> list[str]:
        """Return every value of header ``name`` (any case), in order; ``[]`` if absent."""
        return list(self._by_name.get(name.lower(), ()))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._by_name

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return self._items == other._items

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


def _has_token(value: str | None, token: str) -> bool:
    """Tell whether the comma-separated ``value`` contains ``token`` (case-insensitive)."""
    if not value:
        return False
    for part in value.split(","):  # noqa: SIM110 (any() would make a generator per call)
        if part.strip(" \t").lower() == token:
            return True
    return False


def is_websocket_request(headers: Headers) -> bool:
    """Tell whether a request is addressed to the WebSocket server rather than the WSGI app.

    True when ``Upgrade`` lists the ``websocket`` token, or when ``Sec-WebSocket-Key`` or
    ``Sec-WebSocket-Version`` is present (so that a broken WebSocket handshake is refused with
    a precise reason instead of reaching the application). ``Upgrade: h2c`` alone is not ours.
    """
    return (
        _has_token(headers.get("upgrade"), "websocket")
        or "sec-websocket-key" in headers
        or "sec-websocket-version" in headers
    )


@dataclass
class ResourceURL:
    """The parsed request-target: ``path``, ``query`` and the raw ``query_string``.

    ``query`` maps each name to its value, or to a list of values when the name repeats (like
    Node's ``url.parse(resource, true).query``); blank values are kept and ``+`` means space.
    """

    path: str
    query: dict[str, str | list[str]]
    query_string: str


def _parse_resource(resource: str) -> ResourceURL:
    if resource.startswith("/"):
        # Origin-form: a leading "//" is part of the path here, not an authority.
        path, _, query_string = resource.partition("#")[0].partition("?")
    else:
        try:
            parts = urlsplit(resource)
        except ValueError:  # e.g. an unbalanced "[" in an absolute-form authority
            path, _, query_string = resource.partition("#")[0].partition("?")
        else:
            path, query_string = parts.path, parts.query
    query: dict[str, str | list[str]] = {}
    for name, value in parse_qsl(query_string, keep_blank_values=True):
        existing = query.get(name)
        if existing is None:
            query[name] = value
        elif isinstance(existing, list):
            existing.append(value)
        else:
            query[name] = [existing, value]
    return ResourceURL(path=path, query=query, query_string=query_string)


@dataclass
class HandshakeRequest:
    """A valid opening handshake, as :func:`parse_handshake` read it.

    ``requested_protocols`` are lower-cased (``protocol_full_case`` maps them back to the
    client's spelling); ``origin`` is ``Origin`` for version 13 and ``Sec-WebSocket-Origin``
    for version 8. ``requested_extensions`` and ``cookies`` are ``[]`` when parsing them was
    turned off.
    """

    method: str
    resource: str
    http_version: str
    headers: Headers
    host: str
    key: str
    version: int
    origin: str | None
    requested_protocols: list[str]
    protocol_full_case: dict[str, str]
    requested_extensions: list[RequestedExtension]
    cookies: list[Cookie]

    @property
    def resource_url(self) -> ResourceURL:
        """``resource`` split into path and query (see :class:`ResourceURL`)."""
        return _parse_resource(self.resource)


_HTTP_VERSION = re.compile(r"HTTP/([0-9]{1,9})(?:\.([0-9]{1,9}))?")
_DIGITS = re.compile("[0-9]+")


#: Base64 of 16 bytes: 22 characters of the alphabet and two of padding (what
#: base64.b64decode(key, validate=True) takes and decodes to 16 bytes, and nothing else).
_SIXTEEN_BYTES_BASE64 = re.compile(r"[A-Za-z0-9+/]{22}==")


def _is_key_valid(key: str) -> bool:
    return len(key) == 24 and _SIXTEEN_BYTES_BASE64.fullmatch(key) is not None


def _parse_version(raw_version: str | None) -> int:
    """The ``Sec-WebSocket-Version`` asked for: 8 or 13, else the HandshakeError to answer."""
    if not raw_version or not _DIGITS.fullmatch(raw_version):
        raise HandshakeError("Client must provide a value for Sec-WebSocket-Version.", 400)
    # Compare the digits as text: int() of a few thousand digits would itself raise.
    digits = raw_version.lstrip("0") or "0"
    if digits not in ("8", "13"):
        raise HandshakeError(
            f"Unsupported websocket client version: {digits}Only versions 8 and 13 are supported.",
            426,
            {"Sec-WebSocket-Version": "13"},
        )
    return int(digits)


def parse_handshake(
    method: str,
    resource: str,
    http_version: str,
    headers: Headers,
    *,
    parse_extensions: bool = True,
    parse_cookies: bool = True,
) -> HandshakeRequest:
    """Validate an opening handshake and return what it asks for.

    Raises :class:`~geventws.errors.HandshakeError` for the first failed check, in this order:
    405 unless the method is ``GET`` (with ``Allow: GET``); 400 for an HTTP version below 1.1,
    a missing or empty ``Host``, an ``Upgrade`` without the ``websocket`` token, a
    ``Connection`` without the ``upgrade`` token, a missing ``Sec-WebSocket-Key`` or one that
    is not base64 of 16 bytes, or a ``Sec-WebSocket-Version`` that is missing or not a decimal
    number; 426 (with ``Sec-WebSocket-Version: 13``) for a version other than 8 or 13; and 400
    "URI malformed" for a bad percent escape in ``Cookie`` (when ``parse_cookies``). It raises
    nothing else, whatever the input.
    """
    if method != "GET":
        raise HandshakeError(f"Method must be GET, got {method}.", 405, {"Allow": "GET"})

    if http_version != "HTTP/1.1":  # what every client sends; anything else is parsed
        match = _HTTP_VERSION.fullmatch(http_version)
        if not match or (int(match.group(1)), int(match.group(2) or 0)) < (1, 1):
            raise HandshakeError(f"HTTP/1.1 or higher is required, got {http_version}.", 400)

    host = headers.get("host")
    if not host:
        raise HandshakeError("Client must provide a Host header.", 400)
    if not _has_token(headers.get("upgrade"), "websocket"):
        raise HandshakeError("Upgrade header must include the websocket token.", 400)
    if not _has_token(headers.get("connection"), "upgrade"):
        raise HandshakeError("Connection header must include the upgrade token.", 400)

    key = headers.get("sec-websocket-key")
    if not key:
        raise HandshakeError("Client must provide a value for Sec-WebSocket-Key.", 400)
    if not _is_key_valid(key):
        raise HandshakeError("Sec-WebSocket-Key must be base64 of 16 bytes.", 400)

    raw_version = headers.get("sec-websocket-version")
    # 13 is what every current client sends.
    version = 13 if raw_version == "13" else _parse_version(raw_version)

    cookies: list[Cookie] = []
    if parse_cookies:
        try:
            cookies = parse_cookie_header(headers.get("cookie"))
        except ValueError:
            raise HandshakeError("URI malformed", 400) from None

    protocols, full_case = parse_protocols(headers.get("sec-websocket-protocol"))
    extensions: list[RequestedExtension] = []
    if parse_extensions:
        extensions = header_lists.parse_extensions(headers.get("sec-websocket-extensions"))
    origin = headers.get("origin" if version == 13 else "sec-websocket-origin")
    return HandshakeRequest(
        method=method,
        resource=resource,
        http_version=http_version,
        headers=headers,
        host=host,
        key=key,
        version=version,
        origin=origin,
        requested_protocols=protocols,
        protocol_full_case=full_case,
        requested_extensions=extensions,
        cookies=cookies,
    )


def choose_protocol(request: HandshakeRequest, protocol: str | None) -> str | None:
    """Return the subprotocol to name in the 101 response when the server accepts ``protocol``.

    ``None`` (no header) for a falsy ``protocol``. Otherwise ``protocol`` must be a valid token
    (``ValueError("Illegal character ' ' in subprotocol.")`` names the first bad character)
    and one of the client's requested protocols, compared case-insensitively
    (``ValueError("Specified protocol was not requested by the client.")``); the result is
    spelled as the client spelled it.
    """
    if not protocol:
        return None
    if not isinstance(protocol, str):
        raise TypeError(f"protocol must be a string or None, got {protocol!r}")
    check_subprotocol(protocol)
    lowered = protocol.lower()
    if lowered not in request.requested_protocols:
        raise ValueError("Specified protocol was not requested by the client.")
    spelled = request.protocol_full_case.get(lowered, protocol)
    # Guards against exotic case mappings (U+212A KELVIN SIGN lower-cases to "k").
    return spelled if is_token(spelled) else protocol


_CR_LF = re.compile(r"[\r\n]")
# Other control characters would make the response invalid HTTP for strict clients.
_FORBIDDEN_IN_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _header_items(
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None,
) -> list[tuple[str, str]]:
    if headers is None:
        return []
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    items: list[tuple[str, str]] = []
    for name, value in pairs:
        if not isinstance(name, str):
            raise TypeError(f"header name must be a string, got {name!r}")
        if value is None:
            raise TypeError(f"header {name!r} has no value")
        clean_name = _CR_LF.sub("", name)
        if not is_token(clean_name):
            raise ValueError(f"invalid header name {name!r}")
        items.append((clean_name, _FORBIDDEN_IN_VALUE.sub("", str(value))))
    return items


def _encode_line(name: str, value: str) -> bytes:
    # Latin-1 sends text read from the request back byte for byte; anything beyond it can
    # only have come from the application, and goes out as UTF-8.
    try:
        encoded = value.encode("latin-1")
    except UnicodeEncodeError:
        encoded = value.encode("utf-8", "replace")
    return name.encode("ascii") + b": " + encoded + b"\r\n"


_ACCEPT_HEAD = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: "
)


def build_accept_response(
    key: str,
    protocol: str | None = None,
    set_cookies: Sequence[str] = (),
    extra_headers: Iterable[tuple[str, str]] = (),
) -> bytes:
    """Return the complete ``101 Switching Protocols`` response for a client's ``key``.

    Lines, in order: status line, ``Upgrade: websocket``, ``Connection: Upgrade``,
    ``Sec-WebSocket-Accept``, ``Sec-WebSocket-Protocol`` if ``protocol``, one ``Set-Cookie``
    per entry of ``set_cookies`` (see :func:`geventws.cookies.format_set_cookies`), then
    ``extra_headers``, then the empty line. No ``Origin`` header is ever added. ``protocol``
    must be a valid token and extra header names tokens, else ``ValueError``; CR, LF and other
    control characters but TAB are removed from the values.
    """
    head = _ACCEPT_HEAD + _accept_value(key) + b"\r\n"
    if not (protocol or set_cookies or extra_headers):  # the usual answer
        return head + b"\r\n"
    lines = [head]
    if protocol:
        check_subprotocol(protocol)
        lines.append(_encode_line("Sec-WebSocket-Protocol", protocol))
    for cookie in set_cookies:
        lines.append(_encode_line("Set-Cookie", _FORBIDDEN_IN_VALUE.sub("", cookie)))
    for name, value in _header_items(extra_headers):
        lines.append(_encode_line(name, value))
    lines.append(b"\r\n")
    return b"".join(lines)


def build_reject_response(
    status: int,
    reason: str | None = None,
    extra_headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
) -> bytes:
    """Return the complete HTTP response refusing a handshake with ``status``.

    Lines, in order: ``HTTP/1.1 <status> <standard phrase>``, ``Connection: close``,
    ``X-WebSocket-Reject-Reason: <reason>`` if ``reason``, ``extra_headers``, then
    ``Content-Length: 0`` and the empty line. CR and LF (and other control characters but TAB)
    are removed from the reason and the header values, CR and LF from header names, which
    must then be tokens (else ``ValueError``). ``status`` must be an ``int`` from 100 to 599
    that :class:`http.HTTPStatus` knows, else ``ValueError`` naming it.
    """
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise ValueError(f"invalid HTTP status code {status!r}: must be an int from 100 to 599")
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        raise ValueError(f"unknown HTTP status code {status!r}") from None
    lines = [f"HTTP/1.1 {status} {phrase}\r\n".encode("ascii"), b"Connection: close\r\n"]
    if reason:
        if not isinstance(reason, str):
            raise TypeError(f"reason must be a string, got {reason!r}")
        lines.append(_encode_line("X-WebSocket-Reject-Reason", _FORBIDDEN_IN_VALUE.sub("", reason)))
    for name, value in _header_items(extra_headers):
        lines.append(_encode_line(name, value))
    lines.append(b"Content-Length: 0\r\n\r\n")
    return b"".join(lines)


__all__ = [
    "WEBSOCKET_GUID",
    "HandshakeRequest",
    "Headers",
    "ResourceURL",
    "accept_key",
    "build_accept_response",
    "build_reject_response",
    "choose_protocol",
    "is_websocket_request",
    "parse_handshake",
]
