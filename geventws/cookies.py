"""``Cookie`` request header parsing and ``Set-Cookie`` building, as WebSocket-Node does them.

Why not :mod:`http.cookies`? The goal is to hand applications exactly the cookie list a
WebSocket-Node server would: a *list* in header order (duplicates kept), items separated by
``;`` *or* ``,``, items without ``=`` kept as nameless-value entries, quotes stripped and values
percent-decoded like JavaScript's ``decodeURIComponent`` (a malformed escape refuses the
handshake with "URI malformed"). ``SimpleCookie`` returns a dict, does not split on commas,
decodes octal escapes instead of percent escapes, and silently drops whatever it cannot parse,
so a request would look different depending on the library. On the way out, the ``Set-Cookie``
checks and attribute layout follow WebSocket-Node's ``accept()`` so the same application
mistakes fail with the same messages.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import format_datetime

from .header_lists import JS_WHITESPACE

_JS_SPACE_CLASS = "[" + re.escape(JS_WHITESPACE) + "]"

# WebSocket-Node splits on ``/[;,] */``: only spaces (not other white space) are skipped.
_SEPARATOR = re.compile("[;,] *")
_PERCENT_RUN = re.compile("(?:%[0-9A-Fa-f]{2})+")
_BAD_PERCENT = re.compile("%(?![0-9A-Fa-f]{2})")
_URI_MALFORMED = "URI malformed"


@dataclass(frozen=True)
class Cookie:
    """One item of a ``Cookie`` header.

    ``value`` is ``None`` for an item without ``=`` (its ``name`` is then the untrimmed item).
    """

    name: str
    value: str | None


def _decode_uri_component(text: str) -> str:
    """Percent-decode ``text`` like JavaScript's ``decodeURIComponent``.

    Every ``%`` must start a ``%XX`` escape, and each run of escapes must decode as UTF-8;
    otherwise ``ValueError("URI malformed")``.
    """
    if "%" not in text:
        return text
    if _BAD_PERCENT.search(text):
        raise ValueError(_URI_MALFORMED)

    def decode_run(match: re.Match[str]) -> str:
        try:
            return bytes.fromhex(match.group().replace("%", "")).decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(_URI_MALFORMED) from None

    return _PERCENT_RUN.sub(decode_run, text)


def parse_cookie_header(value: str | None) -> list[Cookie]:
    """Parse a ``Cookie`` header value into a list of :class:`Cookie`, in order.

    Items are separated by ``;`` or ``,`` and the spaces after it. An item without ``=`` gives
    ``Cookie(item, None)``. Otherwise the name and value are trimmed, a value starting with a
    double quote loses its first and last character, and the value is percent-decoded.
    Example: ``a=1; b="two"; c; d=%41%20x`` gives ``a='1'``, ``b='two'``, ``c=None``,
    ``d='A x'``. Raises ``ValueError("URI malformed")`` for a bad ``%`` escape or percent-encoded
    bytes that are not UTF-8, and nothing else. ``None`` or ``""`` gives ``[]``.
    """
    if not value:
        return []
    cookies: list[Cookie] = []
    for item in _SEPARATOR.split(value):
        name, equals, raw_value = item.partition("=")
        if not equals:
            cookies.append(Cookie(item, None))
            continue
        raw_value = raw_value.strip(JS_WHITESPACE)
        if raw_value.startswith('"'):
            raw_value = raw_value[1:-1]
        cookies.append(Cookie(name.strip(JS_WHITESPACE), _decode_uri_component(raw_value)))
    return cookies


# The checks below are WebSocket-Node's, made a little stricter where Node would write
# non-ASCII text into a header: names, paths and domains must be ASCII as well.
_STRIPPED = re.compile(r"[\x00-\x20;]")
_NAME_ILLEGAL = re.compile(
    r"[\x00-\x20\x22\x28\x29\x2c\x2f\x3a-\x3f\x40\x5b-\x5e\x7b\x7d\x7f-\U0010ffff]"
)
_VALUE_ILLEGAL = re.compile(r"[^\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]")
_QUOTED_VALUE = re.compile(r'"[^"]*"')
_ATTRIBUTE_ILLEGAL = re.compile(r"[\x00-\x20;\x7f-\U0010ffff]")
_PARSE_INT = re.compile(_JS_SPACE_CLASS + "*([+-]?[0-9]+)")

_MISSING_NAME_OR_VALUE = 'Each cookie to set must at least provide a "name" and "value"'
_BAD_MAXAGE = 'Value supplied for cookie "maxage" must be a non-zero number'


def _first_present(cookie: Mapping[str, object], *keys: str) -> object:
    for key in keys:
        if key in cookie:
            return cookie[key]
    return None


def _check_attribute(value: str, what: str) -> None:
    bad = _ATTRIBUTE_ILLEGAL.search(value)
    if bad:
        raise ValueError(f"Illegal character {bad.group()} in cookie {what}")


def _max_age(value: object) -> int | None:
    """Return the ``Max-Age`` to send, ``None`` to send none, or raise ``ValueError``."""
    if value is None or value is False or value == "":
        return None
    if isinstance(value, str):
        match = _PARSE_INT.match(value)
        if not match:
            raise ValueError(_BAD_MAXAGE)
        try:
            number = int(match.group(1))
        except ValueError:  # more digits than int() converts
            raise ValueError(_BAD_MAXAGE) from None
    elif isinstance(value, int) and not isinstance(value, bool):
        if value == 0:
            return None
        number = value
    elif isinstance(value, float):
        if value == 0:
            return None
        if not math.isfinite(value):
            raise ValueError(_BAD_MAXAGE)
        # JavaScript's Math.round: halves go up, unlike Python's round().
        number = math.floor(value + 0.5)
    else:
        raise ValueError(_BAD_MAXAGE)
    if number <= 0:
        raise ValueError(_BAD_MAXAGE)
    return number


def _flag(value: object, what: str) -> bool:
    if value is None or value is False:
        return False
    if value is True:
        return True
    if not value:
        return False
    raise ValueError(f'Value supplied for cookie "{what}" must be of type boolean')


def _format_one(cookie: object, seen: set[str]) -> str:
    if not isinstance(cookie, Mapping):
        raise ValueError(_MISSING_NAME_OR_VALUE)
    name = cookie.get("name")
    value = cookie.get("value")
    if not isinstance(name, str) or not isinstance(value, str) or not name or not value:
        raise ValueError(_MISSING_NAME_OR_VALUE)
    # Control characters and semicolons are removed rather than refused, as in Node.
    name = _STRIPPED.sub("", name)
    value = _STRIPPED.sub("", value)
    if not name or not value:
        raise ValueError(_MISSING_NAME_OR_VALUE)
    if name in seen:
        raise ValueError("You may not specify the same cookie name twice.")
    seen.add(name)

    bad = _NAME_ILLEGAL.search(name)
    if bad:
        raise ValueError(f"Illegal character {bad.group()} in cookie name")
    inner = value[1:-1] if _QUOTED_VALUE.fullmatch(value) else value
    bad = _VALUE_ILLEGAL.search(inner)
    if bad:
        raise ValueError(f"Illegal character {bad.group()} in cookie value")

    parts = [f"{name}={value}"]

    path = cookie.get("path")
    if path:
        if not isinstance(path, str):
            raise ValueError('Value supplied for cookie "path" must be a string')
        _check_attribute(path, "path")
        parts.append(f"Path={path}")

    domain = cookie.get("domain")
    if domain:
        if not isinstance(domain, str):
            raise ValueError("Domain must be specified and must be a string.")
        _check_attribute(domain, "domain")
        parts.append(f"Domain={domain.lower()}")

    expires = cookie.get("expires")
    if expires:
        if not isinstance(expires, datetime):
            raise ValueError('Value supplied for cookie "expires" must be a valid date object')
        if expires.tzinfo is None or expires.utcoffset() is None:
            expires = expires.replace(tzinfo=timezone.utc)
        else:
            expires = expires.astimezone(timezone.utc)
        parts.append(f"Expires={format_datetime(expires, usegmt=True)}")

    max_age = _max_age(_first_present(cookie, "maxage", "max_age"))
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")

    if _flag(cookie.get("secure"), "secure"):
        parts.append("Secure")
    if _flag(_first_present(cookie, "httponly", "http_only"), "httponly"):
        parts.append("HttpOnly")
    return ";".join(parts)


def format_set_cookies(cookies: object) -> list[str]:
    """Turn the ``cookies`` argument of ``accept()`` into ``Set-Cookie`` header values.

    ``cookies`` is ``None`` (no cookies) or a list (or tuple) of mappings with ``name`` and
    ``value`` (non-empty strings) and optionally ``path``, ``domain``, ``expires`` (a
    :class:`~datetime.datetime`; naive means UTC), ``maxage`` (or ``max_age``; an int, float or
    numeric string, rounded; 0 means none), ``secure`` and ``httponly`` (or ``http_only``;
    booleans). Control characters, spaces and ``;`` are removed from names and values first.

    Returns one value per cookie, attributes in the order ``Path``, ``Domain``, ``Expires``,
    ``Max-Age``, ``Secure``, ``HttpOnly``, joined by ``;`` without spaces, for example
    ``id=1;Path=/;Domain=example.com;Expires=Tue, 01 Jan 2030 00:00:00 GMT;Max-Age=3;Secure``.
    Anything invalid raises ``ValueError`` with WebSocket-Node's message (``must be a list``
    where Node says ``must be an array``).
    """
    if cookies is None:
        return []
    if not isinstance(cookies, list | tuple):
        raise ValueError('Value supplied for "cookies" argument must be a list.')
    seen: set[str] = set()
    return [_format_one(cookie, seen) for cookie in cookies]


__all__ = ["Cookie", "format_set_cookies", "parse_cookie_header"]
