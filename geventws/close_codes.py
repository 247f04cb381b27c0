"""Close status codes of RFC 6455 section 7.4, their descriptions, and which may be used where."""

from __future__ import annotations

from enum import IntEnum


class CloseCode(IntEnum):
    """The status codes RFC 6455 (7.4.1) and the IANA registry define."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNPROCESSABLE_INPUT = 1003
    RESERVED = 1004
    NOT_PROVIDED = 1005
    ABNORMAL = 1006
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    EXTENSION_REQUIRED = 1010
    INTERNAL_SERVER_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE_FAILED = 1015


#: The descriptions WebSocket-Node reports for codes that have one; other codes have none.
CLOSE_DESCRIPTIONS: dict[int, str] = {
    1000: "Normal connection closure",
    1001: "Remote peer is going away",
    1002: "Protocol error",
    1003: "Unprocessable input",
    1004: "Reserved",
    1005: "Reason not provided",
    1006: "Abnormal closure, no further detail available",
    1007: "Invalid data received",
    1008: "Policy violation",
    1009: "Message too big",
    1010: "Extension requested by client is required",
    1011: "Internal Server Error",
    1015: "TLS Handshake Failed",
}

#: Longest close reason that fits in a control frame (125 bytes less the 2-byte code).
MAX_CLOSE_REASON_BYTES = 123


def describe(code: int) -> str | None:
    """Return the standard description of ``code``, or None when it has none."""
    return CLOSE_DESCRIPTIONS.get(code)


def is_valid_code(code: int) -> bool:
    """Tell whether ``code`` may travel in a Close frame, in either direction (RFC 6455 7.4).

    1004, 1005, 1006 and 1015 are reserved for local use and never valid on the wire;
    1016-2999 are unassigned; 3000-4999 are for libraries and applications.
    """
    return (1000 <= code <= 1003) or (1007 <= code <= 1014) or (3000 <= code <= 4999)
