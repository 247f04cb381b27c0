"""The sans-I/O opening handshake: request parsing, refusals, and response bytes."""

from __future__ import annotations

import io
from http.client import parse_headers

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geventws.cookies import Cookie
from geventws.errors import HandshakeError
from geventws.handshake import (
    WEBSOCKET_GUID,
    HandshakeRequest,
    Headers,
    ResourceURL,
    accept_key,
    build_accept_response,
    build_reject_response,
    choose_protocol,
    is_websocket_request,
    parse_handshake,
)
from geventws.header_lists import ExtensionParam, RequestedExtension

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

VALID = [
    ("Host", "example.com"),
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", KEY),
    ("Sec-WebSocket-Version", "13"),
]


def headers(*changes: tuple[str, str | None], base: list[tuple[str, str]] = VALID) -> Headers:
    """VALID with each (name, value) replacing the header of that name; None removes it."""
    items = list(base)
    for name, value in changes:
        items = [item for item in items if item[0].lower() != name.lower()]
        if value is not None:
            items.append((name, value))
    return Headers(items)


def parse(*changes: tuple[str, str | None], **kwargs: object) -> HandshakeRequest:
    method = str(kwargs.pop("method", "GET"))
    resource = str(kwargs.pop("resource", "/chat"))
    version = str(kwargs.pop("http_version", "HTTP/1.1"))
    return parse_handshake(method, resource, version, headers(*changes), **kwargs)  # type: ignore[arg-type]


def refusal(*changes: tuple[str, str | None], **kwargs: object) -> HandshakeError:
    with pytest.raises(HandshakeError) as info:
        parse(*changes, **kwargs)
    return info.value


# --- accept key --------------------------------------------------------------------------


def test_accept_key_rfc6455_example() -> None:
    assert WEBSOCKET_GUID == "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
    assert accept_key(KEY) == ACCEPT


# --- Headers -----------------------------------------------------------------------------


def test_headers_case_insensitive_and_ordered() -> None:
    h = Headers([("Host", "a"), ("X-One", "1"), ("x-one", "2"), ("Other", "z")])
    assert h.get("HOST") == "a"
    assert h.get("x-ONE") == "1, 2"
    assert h.get_all("X-One") == ["1", "2"]
    assert h.get("missing") is None
    assert h.get_all("missing") == []
    assert "host" in h and "X-ONE" in h and "nope" not in h and 5 not in h
    assert list(h) == [("Host", "a"), ("X-One", "1"), ("x-one", "2"), ("Other", "z")]
    assert len(h) == 4


def test_headers_node_joining() -> None:
    h = Headers(
        [
            ("Cookie", "a=1"),
            ("Cookie", "b=2"),
            ("Host", "first"),
            ("Host", "second"),
            ("Sec-WebSocket-Version", "8"),
            ("Sec-WebSocket-Version", "13"),
        ]
    )
    assert h.get("cookie") == "a=1; b=2"
    assert h.get("host") == "first"
    assert h.get("sec-websocket-version") == "8, 13"


def test_headers_strip_white_space_and_unfold() -> None:
    h = Headers([("A", " \tx y \t"), ("B", "one\r\n  two")])
    assert h.get("a") == "x y"
    assert h.get("b") == "one two"


def test_headers_from_message() -> None:
    raw = (
        b"Host: example.com  \r\n"
        b"Upgrade: websocket\r\n"
        b"Cookie: a=1\r\n"
        b"cookie: b=2\r\n"
        b"X-Folded: one\r\n two\r\n"
        b"X-Latin: caf\xe9\r\n\r\n"
    )
    h = Headers.from_message(parse_headers(io.BytesIO(raw)))
    assert list(h) == [
        ("Host", "example.com"),
        ("Upgrade", "websocket"),
        ("Cookie", "a=1"),
        ("cookie", "b=2"),
        ("X-Folded", "one two"),
        ("X-Latin", "café"),
    ]
    assert h.get("cookie") == "a=1; b=2"


def test_headers_equality() -> None:
    assert Headers([("A", "1")]) == Headers([("A", " 1")])
    assert Headers([("A", "1")]) != Headers([("a", "1")])


# --- is_websocket_request ----------------------------------------------------------------


@pytest.mark.parametrize(
    "items",
    [
        [("Upgrade", "websocket")],
        [("upgrade", "WebSocket")],
        [("Upgrade", "foo, websocket")],
        [("Sec-WebSocket-Key", "x")],
        [("Sec-WebSocket-Version", "13")],
        [("Upgrade", "h2c"), ("Sec-WebSocket-Version", "")],
    ],
)
def test_is_websocket_request_true(items: list[tuple[str, str]]) -> None:
    assert is_websocket_request(Headers(items))


@pytest.mark.parametrize(
    "items",
    [
        [],
        [("Upgrade", "h2c"), ("Connection", "Upgrade, HTTP2-Settings")],
        [("Upgrade", "websockets")],
        [("Connection", "upgrade")],
        [("Host", "websocket")],
    ],
)
def test_is_websocket_request_false(items: list[tuple[str, str]]) -> None:
    assert not is_websocket_request(Headers(items))


# --- parse_handshake: accepted requests --------------------------------------------------


def test_valid_request_fields() -> None:
    request = parse(
        ("Origin", "https://app.example"),
        ("Sec-WebSocket-Protocol", "Chat, superchat,,x "),
        ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"),
        ("Cookie", 'sid=abc; n="%41"'),
        resource="/chat/room?x=1",
    )
    assert request.method == "GET"
    assert request.resource == "/chat/room?x=1"
    assert request.http_version == "HTTP/1.1"
    assert request.host == "example.com"
    assert request.key == KEY
    assert request.version == 13
    assert request.origin == "https://app.example"
    assert request.requested_protocols == ["chat", "superchat", "", "x"]
    assert request.protocol_full_case == {
        "chat": "Chat",
        "superchat": "superchat",
        "": "",
        "x": "x",
    }
    assert request.requested_extensions == [
        RequestedExtension("permessage-deflate", (ExtensionParam("client_max_window_bits", None),))
    ]
    assert request.cookies == [Cookie("sid", "abc"), Cookie("n", "A")]
    assert request.headers.get("origin") == "https://app.example"


def test_absent_optional_headers() -> None:
    request = parse()
    assert request.origin is None
    assert request.requested_protocols == []
    assert request.protocol_full_case == {}
    assert request.requested_extensions == []
    assert request.cookies == []


def test_version_8_reads_sec_websocket_origin() -> None:
    request = parse(
        ("Sec-WebSocket-Version", "8"),
        ("Origin", "https://ignored"),
        ("Sec-WebSocket-Origin", "https://v8.example"),
    )
    assert request.version == 8
    assert request.origin == "https://v8.example"


def test_version_13_ignores_sec_websocket_origin() -> None:
    assert parse(("Sec-WebSocket-Origin", "https://v8.example")).origin is None


def test_parsing_can_be_turned_off() -> None:
    request = parse(
        ("Sec-WebSocket-Extensions", "x-foo"),
        ("Cookie", "a=%"),  # would be refused if parsed
        parse_extensions=False,
        parse_cookies=False,
    )
    assert request.requested_extensions == []
    assert request.cookies == []


@pytest.mark.parametrize(
    ("upgrade", "connection"),
    [
        ("WebSocket", "keep-alive, Upgrade"),
        ("websocket, foo", "UPGRADE"),
        ("foo , websocket", "close,upgrade"),
    ],
)
def test_upgrade_and_connection_token_lists(upgrade: str, connection: str) -> None:
    parse(("Upgrade", upgrade), ("Connection", connection))


@pytest.mark.parametrize("http_version", ["HTTP/1.1", "HTTP/1.2", "HTTP/2.0", "HTTP/2", "HTTP/3"])
def test_http_versions_accepted(http_version: str) -> None:
    assert parse(http_version=http_version).http_version == http_version


@pytest.mark.parametrize(("raw", "version"), [("13", 13), ("8", 8), ("013", 13)])
def test_websocket_versions_accepted(raw: str, version: int) -> None:
    assert parse(("Sec-WebSocket-Version", raw)).version == version


def test_resource_url() -> None:
    request = parse(resource="/chat/room?x=1&x=2&y&z=&a+b=c%20d")
    assert request.resource_url == ResourceURL(
        path="/chat/room",
        query={"x": ["1", "2"], "y": "", "z": "", "a b": "c d"},
        query_string="x=1&x=2&y&z=&a+b=c%20d",
    )


@pytest.mark.parametrize(
    ("resource", "path", "query_string"),
    [
        ("/", "/", ""),
        ("//double/slash?q=1", "//double/slash", "q=1"),
        ("/p#frag?no", "/p", ""),
        ("http://host:80/abs?k=v", "/abs", "k=v"),
        ("http://[::1/broken?k=v", "http://[::1/broken", "k=v"),
        ("*", "*", ""),
    ],
)
def test_resource_url_forms(resource: str, path: str, query_string: str) -> None:
    url = parse(resource=resource).resource_url
    assert (url.path, url.query_string) == (path, query_string)


# --- parse_handshake: refusals -----------------------------------------------------------


def test_method_must_be_get() -> None:
    error = refusal(method="POST")
    assert (error.status, error.reason, error.headers) == (
        405,
        "Method must be GET, got POST.",
        {"Allow": "GET"},
    )
    assert refusal(method="get").reason == "Method must be GET, got get."


@pytest.mark.parametrize(
    "http_version", ["HTTP/1.0", "HTTP/0.9", "http/1.1", "HTTP/1.1 ", "HTTP/1.", "", "HTTP/x"]
)
def test_http_version_must_be_at_least_1_1(http_version: str) -> None:
    error = refusal(http_version=http_version)
    assert (error.status, error.reason, error.headers) == (
        400,
        f"HTTP/1.1 or higher is required, got {http_version}.",
        {},
    )


@pytest.mark.parametrize("host", [None, "", "  "])
def test_host_required(host: str | None) -> None:
    error = refusal(("Host", host))
    assert (error.status, error.reason) == (400, "Client must provide a Host header.")


@pytest.mark.parametrize("upgrade", [None, "", "h2c", "websockets", "web socket"])
def test_upgrade_must_name_websocket(upgrade: str | None) -> None:
    error = refusal(("Upgrade", upgrade))
    assert (error.status, error.reason) == (400, "Upgrade header must include the websocket token.")


@pytest.mark.parametrize("connection", [None, "", "keep-alive", "upgraded", "close"])
def test_connection_must_name_upgrade(connection: str | None) -> None:
    error = refusal(("Connection", connection))
    assert (error.status, error.reason) == (
        400,
        "Connection header must include the upgrade token.",
    )


@pytest.mark.parametrize("key", [None, ""])
def test_key_required(key: str | None) -> None:
    error = refusal(("Sec-WebSocket-Key", key))
    assert (error.status, error.reason) == (
        400,
        "Client must provide a value for Sec-WebSocket-Key.",
    )


@pytest.mark.parametrize(
    "key",
    [
        "abc",
        "dGhlIHNhbXBsZSBub25jZQ",  # no padding
        "dGhlIHNhbXBsZSBub25jZQ==dGhl",
        "dGhlIHNhbXBsZSBub25jZS4=",  # 17 bytes
        "dGhlIHNhbXBsZSBub25j",  # 15 bytes
        "dGhlIHNhbXBsZSBub25jZQ!=",
        "dGhlIHNhbXBsZSBub25jZ\xe9==",
        "dGhlIHNhbXBs ZSBub25jZQ=",
    ],
)
def test_key_must_be_base64_of_16_bytes(key: str) -> None:
    error = refusal(("Sec-WebSocket-Key", key))
    assert (error.status, error.reason) == (400, "Sec-WebSocket-Key must be base64 of 16 bytes.")


@pytest.mark.parametrize(
    "key", ["AAAAAAAAAAAAAAAAAAAAAA==", "dGhlIHNhbXBsZSBub25jZR==", "+/+/+/+/+/+/+/+/+/+/+/=="]
)
def test_any_base64_of_16_bytes_is_a_key(key: str) -> None:
    """Padding bits that are not zero (``R==``) pass, as they do for base64.b64decode."""
    assert parse(("Sec-WebSocket-Key", key)).key == key


def test_two_keys_are_joined_and_refused() -> None:
    h = Headers([*VALID, ("Sec-WebSocket-Key", KEY)])
    with pytest.raises(HandshakeError) as info:
        parse_handshake("GET", "/", "HTTP/1.1", h)
    assert info.value.reason == "Sec-WebSocket-Key must be base64 of 16 bytes."


@pytest.mark.parametrize("version", [None, "", "abc", "13abc", "-13", "+13", "1 3", "\uff11\uff13"])
def test_version_required_and_decimal(version: str | None) -> None:
    error = refusal(("Sec-WebSocket-Version", version))
    assert (error.status, error.reason, error.headers) == (
        400,
        "Client must provide a value for Sec-WebSocket-Version.",
        {},
    )


def test_two_versions_are_joined_and_refused() -> None:
    h = Headers([*VALID, ("Sec-WebSocket-Version", "8")])
    with pytest.raises(HandshakeError) as info:
        parse_handshake("GET", "/", "HTTP/1.1", h)
    assert info.value.reason == "Client must provide a value for Sec-WebSocket-Version."


@pytest.mark.parametrize(
    ("raw", "shown"), [("7", "7"), ("0", "0"), ("00", "0"), ("12", "12"), ("9" * 5000, "9" * 5000)]
)
def test_unsupported_version_426(raw: str, shown: str) -> None:
    error = refusal(("Sec-WebSocket-Version", raw))
    assert error.status == 426
    assert error.reason == (
        f"Unsupported websocket client version: {shown}Only versions 8 and 13 are supported."
    )
    assert error.headers == {"Sec-WebSocket-Version": "13"}


def test_malformed_cookie_400() -> None:
    error = refusal(("Cookie", "a=1; b=%E2%82"))
    assert (error.status, error.reason, error.headers) == (400, "URI malformed", {})
    assert error.__cause__ is None


def test_checks_run_in_order() -> None:
    everything_wrong = [("Host", None), ("Upgrade", None), ("Sec-WebSocket-Version", "7")]
    assert refusal(*everything_wrong, method="PUT").status == 405
    assert refusal(*everything_wrong, http_version="HTTP/1.0").reason.startswith("HTTP/1.1")
    assert refusal(*everything_wrong).reason == "Client must provide a Host header."
    assert refusal(*everything_wrong[1:]).reason.startswith("Upgrade header")
    assert refusal(("Connection", None), ("Sec-WebSocket-Key", None)).reason.startswith(
        "Connection header"
    )
    assert refusal(("Sec-WebSocket-Key", "x"), ("Sec-WebSocket-Version", "7")).reason == (
        "Sec-WebSocket-Key must be base64 of 16 bytes."
    )
    assert refusal(("Sec-WebSocket-Version", "7"), ("Cookie", "a=%")).status == 426


# --- choose_protocol ---------------------------------------------------------------------


def protocol_request(value: str | None) -> HandshakeRequest:
    return parse(("Sec-WebSocket-Protocol", value))


@pytest.mark.parametrize("protocol", [None, ""])
def test_choose_no_protocol(protocol: str | None) -> None:
    assert choose_protocol(protocol_request("chat"), protocol) is None
    assert choose_protocol(protocol_request(None), protocol) is None


@pytest.mark.parametrize("passed", ["chat", "Chat", "CHAT"])
def test_choose_protocol_case_insensitive_echoes_client_spelling(passed: str) -> None:
    assert choose_protocol(protocol_request("superchat, Chat"), passed) == "Chat"


def test_choose_protocol_not_requested() -> None:
    with pytest.raises(ValueError) as info:
        choose_protocol(protocol_request("chat"), "other")
    assert str(info.value) == "Specified protocol was not requested by the client."
    with pytest.raises(ValueError) as info:
        choose_protocol(protocol_request(None), "chat")
    assert str(info.value) == "Specified protocol was not requested by the client."


@pytest.mark.parametrize(("protocol", "bad"), [("a b", " "), ("a;b", ";"), ("ché", "é")])
def test_choose_protocol_illegal_character(protocol: str, bad: str) -> None:
    # Even when the client asked for it: the token check comes first.
    with pytest.raises(ValueError) as info:
        choose_protocol(protocol_request(f"{protocol}, x"), protocol)
    assert str(info.value) == f"Illegal character {bad!r} in subprotocol."


def test_choose_protocol_exotic_case_mapping_falls_back_to_the_token() -> None:
    request = protocol_request(None)
    request.requested_protocols = ["k"]
    request.protocol_full_case = {"k": "\u212a"}  # KELVIN SIGN lower-cases to "k"
    assert choose_protocol(request, "K") == "K"


# --- build_accept_response ---------------------------------------------------------------


def test_accept_response_minimal() -> None:
    assert build_accept_response(KEY) == (
        b"HTTP/1.1 101 Switching Protocols\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        b"\r\n"
    )


def test_accept_response_full() -> None:
    response = build_accept_response(
        KEY,
        "Chat",
        ["a=1;Path=/", "b=2;Secure"],
        [("Sec-WebSocket-Extensions", "permessage-deflate"), ("X-Extra", "v")],
    )
    assert response == (
        b"HTTP/1.1 101 Switching Protocols\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        b"Sec-WebSocket-Protocol: Chat\r\n"
        b"Set-Cookie: a=1;Path=/\r\n"
        b"Set-Cookie: b=2;Secure\r\n"
        b"Sec-WebSocket-Extensions: permessage-deflate\r\n"
        b"X-Extra: v\r\n"
        b"\r\n"
    )
    assert b"Origin" not in response


def test_accept_response_empty_protocol_means_no_header() -> None:
    assert b"Sec-WebSocket-Protocol" not in build_accept_response(KEY, "")


def test_accept_response_refuses_injection() -> None:
    with pytest.raises(ValueError):
        build_accept_response(KEY, "chat\r\nX-Evil: 1")
    with pytest.raises(ValueError):
        build_accept_response(KEY, extra_headers=[("Bad Name", "v")])
    response = build_accept_response(KEY, set_cookies=["a=1\r\nX-Evil: 1"])
    assert b"Set-Cookie: a=1X-Evil: 1\r\n" in response


# --- build_reject_response ---------------------------------------------------------------


def test_reject_response_with_reason() -> None:
    assert build_reject_response(400, "Client must provide a Host header.") == (
        b"HTTP/1.1 400 Bad Request\r\n"
        b"Connection: close\r\n"
        b"X-WebSocket-Reject-Reason: Client must provide a Host header.\r\n"
        b"Content-Length: 0\r\n"
        b"\r\n"
    )


@pytest.mark.parametrize("reason", [None, ""])
def test_reject_response_without_reason(reason: str | None) -> None:
    assert build_reject_response(403, reason) == (
        b"HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    )


def test_reject_response_for_handshake_errors() -> None:
    error = refusal(("Sec-WebSocket-Version", "7"))
    assert build_reject_response(error.status, error.reason, error.headers) == (
        b"HTTP/1.1 426 Upgrade Required\r\n"
        b"Connection: close\r\n"
        b"X-WebSocket-Reject-Reason: Unsupported websocket client version: 7"
        b"Only versions 8 and 13 are supported.\r\n"
        b"Sec-WebSocket-Version: 13\r\n"
        b"Content-Length: 0\r\n"
        b"\r\n"
    )
    error = refusal(method="POST")
    assert build_reject_response(error.status, error.reason, error.headers) == (
        b"HTTP/1.1 405 Method Not Allowed\r\n"
        b"Connection: close\r\n"
        b"X-WebSocket-Reject-Reason: Method must be GET, got POST.\r\n"
        b"Allow: GET\r\n"
        b"Content-Length: 0\r\n"
        b"\r\n"
    )


@pytest.mark.parametrize(
    ("status", "line"),
    [
        (404, b"HTTP/1.1 404 Not Found\r\n"),
        (418, b"HTTP/1.1 418 I'm a Teapot\r\n"),
        (429, b"HTTP/1.1 429 Too Many Requests\r\n"),
        (503, b"HTTP/1.1 503 Service Unavailable\r\n"),
    ],
)
def test_reject_status_line_uses_standard_phrase(status: int, line: bytes) -> None:
    assert build_reject_response(status).startswith(line)


def test_reject_strips_cr_lf_from_reason_and_headers() -> None:
    response = build_reject_response(
        400,
        "bad\r\nX-Injected: 1",
        {"X-A\r\n": "v\r\nX-Injected: 2", "Retry-After": "5"},
    )
    assert response == (
        b"HTTP/1.1 400 Bad Request\r\n"
        b"Connection: close\r\n"
        b"X-WebSocket-Reject-Reason: badX-Injected: 1\r\n"
        b"X-A: vX-Injected: 2\r\n"
        b"Retry-After: 5\r\n"
        b"Content-Length: 0\r\n"
        b"\r\n"
    )


def test_reject_extra_headers_as_pairs_keep_order_and_repeats() -> None:
    response = build_reject_response(
        401, None, [("WWW-Authenticate", "A"), ("WWW-Authenticate", "B")]
    )
    assert response == (
        b"HTTP/1.1 401 Unauthorized\r\n"
        b"Connection: close\r\n"
        b"WWW-Authenticate: A\r\n"
        b"WWW-Authenticate: B\r\n"
        b"Content-Length: 0\r\n"
        b"\r\n"
    )


def test_reject_reason_encoding() -> None:
    assert b"Reason: caf\xe9\r\n" in build_reject_response(400, "café")
    assert b"Reason: \xe2\x82\xac\r\n" in build_reject_response(400, "€")


@pytest.mark.parametrize("status", [True, False, "404", 404.0, None, 99, 600, 0, -1, 299, 499])
def test_reject_invalid_status(status: object) -> None:
    with pytest.raises(ValueError) as info:
        build_reject_response(status)  # type: ignore[arg-type]
    assert repr(status) in str(info.value)


@pytest.mark.parametrize("name", ["", "Bad Name", "X:Y", "Ünicode", "\r\n"])
def test_reject_invalid_header_name(name: str) -> None:
    with pytest.raises(ValueError):
        build_reject_response(400, None, {name: "v"})


# --- properties --------------------------------------------------------------------------

latin1 = st.binary(max_size=60).map(lambda data: data.decode("latin-1"))
header_names = st.sampled_from(
    [
        "Host",
        "Upgrade",
        "Connection",
        "Sec-WebSocket-Key",
        "Sec-WebSocket-Version",
        "Sec-WebSocket-Protocol",
        "Sec-WebSocket-Extensions",
        "Sec-WebSocket-Origin",
        "Origin",
        "Cookie",
    ]
)
plausible = st.sampled_from(
    ["websocket", "Upgrade", KEY, "13", "8", "7", "a=%41", "a=%", "x; y=1", "chat, Chat", ""]
)


@settings(max_examples=300)
@given(
    method=st.one_of(st.just("GET"), latin1),
    http_version=st.one_of(st.sampled_from(["HTTP/1.1", "HTTP/2"]), latin1),
    resource=latin1,
    changes=st.lists(
        st.tuples(st.one_of(header_names, latin1), st.one_of(plausible, latin1)), max_size=8
    ),
    parse_cookies=st.booleans(),
)
def test_parse_handshake_returns_or_raises_handshake_error(
    method: str,
    http_version: str,
    resource: str,
    changes: list[tuple[str, str]],
    parse_cookies: bool,
) -> None:
    h = Headers([*VALID, *changes])
    try:
        request = parse_handshake(method, resource, http_version, h, parse_cookies=parse_cookies)
    except HandshakeError as error:
        assert error.status in (400, 405, 426)
        build_reject_response(error.status, error.reason, error.headers)
    else:
        assert request.version in (8, 13)
        assert isinstance(request.resource_url, ResourceURL)


@settings(max_examples=300)
@given(reason=st.text(max_size=200), value=st.text(max_size=50))
def test_reject_response_has_no_stray_line_breaks(reason: str, value: str) -> None:
    response = build_reject_response(400, reason, {"X-Value": value})
    head, separator, body = response.partition(b"\r\n\r\n")
    assert separator and body == b""
    lines = head.split(b"\r\n")
    assert len(lines) == (3 if reason else 2) + 2
    for line in lines:
        assert b"\r" not in line and b"\n" not in line
