"""Cookie header parsing and Set-Cookie building, with WebSocket-Node's formats and messages."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geventws.cookies import Cookie, format_set_cookies, parse_cookie_header

# --- parse_cookie_header -----------------------------------------------------------------


def test_node_example() -> None:
    assert parse_cookie_header('a=1; b="two"; c; d=%41%20x, e = 5 ;f=') == [
        Cookie("a", "1"),
        Cookie("b", "two"),
        Cookie("c", None),
        Cookie("d", "A x"),
        Cookie("e", "5"),
        Cookie("f", ""),
    ]


@pytest.mark.parametrize("value", [None, ""])
def test_absent(value: str | None) -> None:
    assert parse_cookie_header(value) == []


def test_item_without_equals_is_kept_untrimmed() -> None:
    # Only spaces after the separator are skipped (Node's /[;,] */), so the TAB stays.
    assert parse_cookie_header("a=1;\tc , d ;") == [
        Cookie("a", "1"),
        Cookie("\tc ", None),
        Cookie("d ", None),
        Cookie("", None),
    ]


def test_duplicates_and_order_are_kept() -> None:
    assert parse_cookie_header("a=1; a=2,b=3") == [
        Cookie("a", "1"),
        Cookie("a", "2"),
        Cookie("b", "3"),
    ]


def test_value_splits_on_first_equals_and_names_are_not_decoded() -> None:
    assert parse_cookie_header("%41=b=c") == [Cookie("%41", "b=c")]


def test_quotes_lose_first_and_last_character_only() -> None:
    assert parse_cookie_header('a="x"; b="; c=""; d="y') == [
        Cookie("a", "x"),
        Cookie("b", ""),
        Cookie("c", ""),
        Cookie("d", ""),
    ]


def test_javascript_trim_rules() -> None:
    # trim() removes NBSP and U+FEFF but not U+001C or U+0085 (unlike str.strip()).
    assert parse_cookie_header("\xa0a\ufeff=\x1cv\x85") == [Cookie("a", "\x1cv\x85")]


def test_percent_decoding_like_decode_uri_component() -> None:
    assert parse_cookie_header("a=%E2%82%AC%2b+%25%2541") == [Cookie("a", "€++%%41")]
    assert parse_cookie_header("a=caf\xe9") == [Cookie("a", "café")]


@pytest.mark.parametrize(
    "value",
    [
        "a=%",
        "a=%4",
        "a=%G1",
        "a=100%",
        "a=%%41",
        "a=%C3",  # truncated UTF-8 sequence
        "a=%C3x",
        "a=%FF",
        "a=%C0%80",  # overlong
        "a=%ED%A0%80",  # surrogate
        "a=%F4%90%80%80",  # beyond U+10FFFF
        "ok=1; a=%E2%82",
    ],
)
def test_malformed_percent_encoding(value: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_cookie_header(value)
    assert str(info.value) == "URI malformed"


def test_percent_in_nameless_item_is_not_decoded() -> None:
    assert parse_cookie_header("%ZZ") == [Cookie("%ZZ", None)]


latin1_text = st.binary(max_size=200).map(lambda data: data.decode("latin-1"))


@settings(max_examples=300)
@given(st.one_of(latin1_text, st.text(max_size=200)))
def test_parse_raises_only_uri_malformed(value: str) -> None:
    try:
        cookies = parse_cookie_header(value)
    except ValueError as error:
        assert type(error) is ValueError
        assert str(error) == "URI malformed"
    else:
        assert all(isinstance(cookie, Cookie) for cookie in cookies)


# --- format_set_cookies ------------------------------------------------------------------


def one(**cookie: Any) -> str:
    [line] = format_set_cookies([cookie])
    return line


def refused(cookies: object) -> str:
    with pytest.raises(ValueError) as info:
        format_set_cookies(cookies)
    return str(info.value)


def test_all_attributes_in_node_order() -> None:
    line = one(
        httponly=True,
        secure=True,
        maxage=3,
        expires=datetime(2030, 1, 1),
        domain="Example.COM",
        path="/",
        value="value",
        name="name",
    )
    assert line == (
        "name=value;Path=/;Domain=example.com;Expires=Tue, 01 Jan 2030 00:00:00 GMT;"
        "Max-Age=3;Secure;HttpOnly"
    )


def test_several_cookies_one_line_each() -> None:
    assert format_set_cookies([{"name": "a", "value": "1"}, {"name": "b", "value": "2"}]) == [
        "a=1",
        "b=2",
    ]
    assert format_set_cookies(({"name": "a", "value": "1"},)) == ["a=1"]


@pytest.mark.parametrize("cookies", [None, []])
def test_nothing_to_set(cookies: object) -> None:
    assert format_set_cookies(cookies) == []


@pytest.mark.parametrize("cookies", [{"name": "a", "value": "1"}, "a=1", 5, {"a"}])
def test_cookies_must_be_a_list(cookies: object) -> None:
    assert refused(cookies) == 'Value supplied for "cookies" argument must be a list.'


@pytest.mark.parametrize(
    "cookie",
    [
        {"name": "a"},
        {"value": "1"},
        {"name": "", "value": "1"},
        {"name": "a", "value": ""},
        {"name": "a", "value": None},
        {"name": "a", "value": 5},
        {"name": 1, "value": "1"},
        {"name": " ;", "value": "1"},  # nothing left once stripped
        "a=1",
        None,
    ],
)
def test_name_and_value_required(cookie: object) -> None:
    assert refused([cookie]) == 'Each cookie to set must at least provide a "name" and "value"'


def test_control_characters_spaces_and_semicolons_are_stripped() -> None:
    assert one(name="a b", value="x y;z") == "ab=xyz"
    assert one(name="\r\nid\x00", value="\t1\x1f") == "id=1"


def test_duplicate_names() -> None:
    message = "You may not specify the same cookie name twice."
    assert refused([{"name": "a", "value": "1"}, {"name": "a", "value": "2"}]) == message
    assert refused([{"name": "ab", "value": "1"}, {"name": "a b", "value": "2"}]) == message


@pytest.mark.parametrize("bad", [*'"(),/:<=>?@[\\]^{}', "\x7f", "é"])
def test_illegal_name_character(bad: str) -> None:
    assert refused([{"name": f"a{bad}b", "value": "1"}]) == (
        f"Illegal character {bad} in cookie name"
    )


@pytest.mark.parametrize("bad", ['"', ",", "\\", "\x7f", "é"])
def test_illegal_value_character(bad: str) -> None:
    assert refused([{"name": "a", "value": f"x{bad}y"}]) == (
        f"Illegal character {bad} in cookie value"
    )


def test_quoted_value_is_allowed_and_kept() -> None:
    assert one(name="a", value='"xyz"') == 'a="xyz"'
    assert refused([{"name": "a", "value": '"x"y"'}]) == 'Illegal character " in cookie value'


def test_value_allows_every_cookie_octet() -> None:
    octets = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '",;\\')
    assert one(name="a", value=octets) == f"a={octets}"


@pytest.mark.parametrize(("bad", "path"), [(" ", "/a b"), (";", "/a;b"), ("\x7f", "/\x7f")])
def test_illegal_path_character(bad: str, path: str) -> None:
    assert refused([{"name": "a", "value": "1", "path": path}]) == (
        f"Illegal character {bad} in cookie path"
    )


def test_path_must_be_a_string() -> None:
    assert refused([{"name": "a", "value": "1", "path": 5}]) == (
        'Value supplied for cookie "path" must be a string'
    )


def test_domain_checks() -> None:
    assert refused([{"name": "a", "value": "1", "domain": 5}]) == (
        "Domain must be specified and must be a string."
    )
    assert refused([{"name": "a", "value": "1", "domain": "a;b"}]) == (
        "Illegal character ; in cookie domain"
    )
    assert refused([{"name": "a", "value": "1", "domain": "a\nb"}]) == (
        "Illegal character \n in cookie domain"
    )
    assert one(name="a", value="1", domain="Sub.Example.Org") == "a=1;Domain=sub.example.org"


def test_falsy_attributes_are_omitted() -> None:
    assert (
        one(
            name="a",
            value="1",
            path="",
            domain="",
            expires=None,
            maxage=0,
            secure=False,
            httponly=None,
        )
        == "a=1"
    )


def test_expires() -> None:
    assert one(name="a", value="1", expires=datetime(2030, 1, 1, 0, 0, 0, 999999)) == (
        "a=1;Expires=Tue, 01 Jan 2030 00:00:00 GMT"
    )
    paris = timezone(timedelta(hours=1))
    assert one(name="a", value="1", expires=datetime(2030, 1, 1, 1, 0, tzinfo=paris)) == (
        "a=1;Expires=Tue, 01 Jan 2030 00:00:00 GMT"
    )


@pytest.mark.parametrize("expires", ["Tue, 01 Jan 2030 00:00:00 GMT", 1893456000, True])
def test_expires_must_be_a_datetime(expires: object) -> None:
    assert refused([{"name": "a", "value": "1", "expires": expires}]) == (
        'Value supplied for cookie "expires" must be a valid date object'
    )


@pytest.mark.parametrize(
    ("maxage", "expected"),
    [(3, "3"), (2.6, "3"), (2.5, "3"), (3.4, "3"), ("10", "10"), (" 7abc", "7"), ("+5", "5")],
)
def test_maxage(maxage: object, expected: str) -> None:
    assert one(name="a", value="1", maxage=maxage) == f"a=1;Max-Age={expected}"


def test_max_age_alias() -> None:
    assert one(name="a", value="1", max_age=60) == "a=1;Max-Age=60"


@pytest.mark.parametrize("maxage", [0, 0.0, "", None, False])
def test_maxage_falsy_is_omitted(maxage: object) -> None:
    assert one(name="a", value="1", maxage=maxage) == "a=1"


@pytest.mark.parametrize(
    "maxage", ["0", -1, -0.5, 0.4, "-3", "abc", "x1", math.nan, math.inf, True, [1]]
)
def test_maxage_invalid(maxage: object) -> None:
    assert refused([{"name": "a", "value": "1", "maxage": maxage}]) == (
        'Value supplied for cookie "maxage" must be a non-zero number'
    )


def test_secure_and_httponly_flags() -> None:
    assert one(name="a", value="1", secure=True) == "a=1;Secure"
    assert one(name="a", value="1", http_only=True) == "a=1;HttpOnly"
    assert one(name="a", value="1", httponly=True, secure=True) == "a=1;Secure;HttpOnly"


@pytest.mark.parametrize("flag", ["secure", "httponly"])
@pytest.mark.parametrize("value", ["yes", 1, "true"])
def test_flags_must_be_booleans(flag: str, value: object) -> None:
    assert refused([{"name": "a", "value": "1", flag: value}]) == (
        f'Value supplied for cookie "{flag}" must be of type boolean'
    )


def test_first_error_wins_in_node_order() -> None:
    # Name is checked before value, value before the attributes.
    assert refused([{"name": "a,", "value": "\\", "path": "a b"}]) == (
        "Illegal character , in cookie name"
    )
    assert refused([{"name": "a", "value": "\\", "path": "a b"}]) == (
        "Illegal character \\ in cookie value"
    )
