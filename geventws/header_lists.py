"""Parsing of the list-valued handshake headers, the way WebSocket-Node reads them.

``Sec-WebSocket-Protocol`` and ``Sec-WebSocket-Extensions`` are split with WebSocket-Node's
regular expressions rather than a full RFC 7230 list grammar, so applications see the same
lists a Node server would show them (empty items and trailing spaces included). The parsers
never raise: whatever the client sent, some list comes back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: The characters JavaScript's ``\s`` and ``String.prototype.trim`` treat as white space.
#: Python's ``\s`` and ``str.strip()`` differ (they include U+001C-U+001F and U+0085 and leave
#: out U+FEFF), so the Node-compatible parsers use this set explicitly.
JS_WHITESPACE = (
    "\t\n\x0b\x0c\r \xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_JS_SPACE_CLASS = "[" + re.escape(JS_WHITESPACE) + "]"

_VALUE_SPLIT = re.compile("," + _JS_SPACE_CLASS + "*")
_PARAM_SPLIT = re.compile(";" + _JS_SPACE_CLASS + "*")

_TCHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def is_token(value: str) -> bool:
    """Tell whether ``value`` is a non-empty RFC 7230 ``token`` (only ``tchar`` characters)."""
    return _TOKEN.fullmatch(value) is not None


def check_subprotocol(protocol: str) -> None:
    """Raise ``ValueError`` unless ``protocol`` may be sent in ``Sec-WebSocket-Protocol``.

    Every character must be visible ASCII (0x21-0x7E) and not an HTTP separator; the message
    names the first offending character: ``Illegal character ' ' in subprotocol.``.
    """
    for ch in protocol:
        if ch not in _TCHARS:
            raise ValueError(f"Illegal character {ch!r} in subprotocol.")


def parse_protocols(value: str | None) -> tuple[list[str], dict[str, str]]:
    """Split a ``Sec-WebSocket-Protocol`` value into lower-cased protocol names.

    Returns the names in the client's order, and a map from each lower-cased name to the
    client's spelling (a later duplicate wins). Items are split on a comma followed by optional
    white space, as WebSocket-Node does, so empty items and trailing spaces are kept:
    ``"a,,b ,  c"`` gives ``['a', '', 'b ', 'c']``. ``None`` or ``""`` gives ``([], {})``.
    """
    if not value:
        return [], {}
    protocols: list[str] = []
    full_case: dict[str, str] = {}
    for item in _VALUE_SPLIT.split(value):
        lowered = item.lower()
        protocols.append(lowered)
        full_case[lowered] = item
    return protocols, full_case


@dataclass(frozen=True)
class ExtensionParam:
    """One ``name[=value]`` parameter of a requested extension.

    ``value`` is ``None`` when the parameter had no ``=``; quotes around a value are kept.
    """

    name: str
    value: str | None


@dataclass(frozen=True)
class RequestedExtension:
    """One extension offered in ``Sec-WebSocket-Extensions``, with its parameters in order."""

    name: str
    params: tuple[ExtensionParam, ...] = ()


def parse_extensions(value: str | None) -> list[RequestedExtension]:
    """Parse a ``Sec-WebSocket-Extensions`` value the way WebSocket-Node does.

    The whole value is lower-cased, split into extensions on a comma and optional white space,
    and each extension on a semicolon and optional white space; the first part is the name and
    each other part a parameter, split on its first ``=`` (no ``=``: value ``None``). Quotes
    and spaces around ``=`` are kept, and quoted commas are not understood. ``None`` or ``""``
    gives ``[]``.
    """
    if not value:
        return []
    extensions: list[RequestedExtension] = []
    for item in _VALUE_SPLIT.split(value.lower()):
        name, *raw_params = _PARAM_SPLIT.split(item)
        params: list[ExtensionParam] = []
        for raw in raw_params:
            param_name, equals, param_value = raw.partition("=")
            params.append(ExtensionParam(param_name, param_value if equals else None))
        extensions.append(RequestedExtension(name, tuple(params)))
    return extensions


__all__ = [
    "JS_WHITESPACE",
    "ExtensionParam",
    "RequestedExtension",
    "check_subprotocol",
    "is_token",
    "parse_extensions",
    "parse_protocols",
]
