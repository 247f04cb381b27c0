"""Close status codes (RFC 6455 7.4) and WebSocket-Node's descriptions."""

from __future__ import annotations

import pytest

from geventws.close_codes import (
    CLOSE_DESCRIPTIONS,
    MAX_CLOSE_REASON_BYTES,
    CloseCode,
    describe,
    is_valid_code,
)


def test_close_code_values() -> None:
    assert {code.name: int(code) for code in CloseCode} == {
        "NORMAL": 1000,
        "GOING_AWAY": 1001,
        "PROTOCOL_ERROR": 1002,
        "UNPROCESSABLE_INPUT": 1003,
        "RESERVED": 1004,
        "NOT_PROVIDED": 1005,
        "ABNORMAL": 1006,
        "INVALID_DATA": 1007,
        "POLICY_VIOLATION": 1008,
        "MESSAGE_TOO_BIG": 1009,
        "EXTENSION_REQUIRED": 1010,
        "INTERNAL_SERVER_ERROR": 1011,
        "SERVICE_RESTART": 1012,
        "TRY_AGAIN_LATER": 1013,
        "BAD_GATEWAY": 1014,
        "TLS_HANDSHAKE_FAILED": 1015,
    }


def test_descriptions_are_websocket_nodes() -> None:
    assert CLOSE_DESCRIPTIONS == {
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


@pytest.mark.parametrize("code", [1012, 1013, 1014, 1016, 3000, 4000, 4999, 999, 0])
def test_codes_without_a_description_describe_as_none(code: int) -> None:
    assert describe(code) is None


def test_describe_returns_the_table_text() -> None:
    assert describe(1000) == "Normal connection closure"
    assert describe(CloseCode.NOT_PROVIDED) == "Reason not provided"
    assert describe(1015) == "TLS Handshake Failed"


@pytest.mark.parametrize(
    "code", [1000, 1001, 1002, 1003, *range(1007, 1015), 3000, 3999, 4000, 4999]
)
def test_valid_codes(code: int) -> None:
    assert is_valid_code(code)


@pytest.mark.parametrize(
    "code", [-1, 0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535, 70000]
)
def test_invalid_codes(code: int) -> None:
    assert not is_valid_code(code)


def test_validity_over_the_whole_16_bit_range_matches_rfc_6455() -> None:
    def rfc(code: int) -> bool:
        if code < 1000 or code >= 5000:
            return False
        if code in (1004, 1005, 1006, 1015):
            return False  # reserved, never on the wire
        return not 1016 <= code <= 2999  # unassigned / reserved for future use

    mismatches = [code for code in range(0x10000) if is_valid_code(code) != rfc(code)]
    assert mismatches == []


def test_longest_close_reason_is_123_bytes() -> None:
    assert MAX_CLOSE_REASON_BYTES == 123
