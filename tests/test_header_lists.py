"""Sec-WebSocket-Protocol / Sec-WebSocket-Extensions parsing and the subprotocol token check."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geventws.header_lists import (
    ExtensionParam,
    RequestedExtension,
    check_subprotocol,
    is_token,
    parse_extensions,
    parse_protocols,
)

# --- parse_protocols ---------------------------------------------------------------------


def test_protocols_node_split_keeps_empty_items_and_trailing_spaces() -> None:
    protocols, full_case = parse_protocols("a,,b ,  c")
    assert protocols == ["a", "", "b ", "c"]
    assert full_case == {"a": "a", "": "", "b ": "b ", "c": "c"}


def test_protocols_are_lower_cased_and_the_spelling_remembered() -> None:
    protocols, full_case = parse_protocols("Chat, SuperChat,echo")
    assert protocols == ["chat", "superchat", "echo"]
    assert full_case == {"chat": "Chat", "superchat": "SuperChat", "echo": "echo"}


def test_protocols_later_duplicate_spelling_wins() -> None:
    protocols, full_case = parse_protocols("Chat, CHAT")
    assert protocols == ["chat", "chat"]
    assert full_case == {"chat": "CHAT"}


@pytest.mark.parametrize("value", [None, ""])
def test_protocols_absent(value: str | None) -> None:
    assert parse_protocols(value) == ([], {})


def test_protocols_split_skips_javascript_white_space_only() -> None:
    # JavaScript's \s includes TAB and NBSP but not U+001C; Python's \s would differ.
    assert parse_protocols("a,\t\xa0b")[0] == ["a", "b"]
    assert parse_protocols("a,\x1cb")[0] == ["a", "\x1cb"]
    assert parse_protocols(" a ,b")[0] == [" a ", "b"]


# --- parse_extensions --------------------------------------------------------------------


def test_extensions_node_example() -> None:
    value = 'permessage-deflate; client_max_window_bits, x-foo; A=1; b="q", Bar'
    assert parse_extensions(value) == [
        RequestedExtension("permessage-deflate", (ExtensionParam("client_max_window_bits", None),)),
        RequestedExtension("x-foo", (ExtensionParam("a", "1"), ExtensionParam("b", '"q"'))),
        RequestedExtension("bar", ()),
    ]


@pytest.mark.parametrize("value", [None, ""])
def test_extensions_absent(value: str | None) -> None:
    assert parse_extensions(value) == []


def test_extensions_param_split_on_first_equals_and_spaces_kept() -> None:
    assert parse_extensions("x; key=abc==; a = 1; empty=") == [
        RequestedExtension(
            "x",
            (
                ExtensionParam("key", "abc=="),
                ExtensionParam("a ", " 1"),
                ExtensionParam("empty", ""),
            ),
        )
    ]


def test_extensions_quoted_comma_is_not_understood() -> None:
    assert parse_extensions('x; a="1,2"') == [
        RequestedExtension("x", (ExtensionParam("a", '"1'),)),
        RequestedExtension('2"', ()),
    ]


def test_extensions_empty_items_are_kept() -> None:
    assert parse_extensions("a,,b;") == [
        RequestedExtension("a", ()),
        RequestedExtension("", ()),
        RequestedExtension("b", (ExtensionParam("", None),)),
    ]


def test_extension_types_are_frozen_and_hashable() -> None:
    extension = RequestedExtension("x", (ExtensionParam("a", "1"),))
    assert hash(extension) == hash(RequestedExtension("x", (ExtensionParam("a", "1"),)))
    with pytest.raises(AttributeError):
        extension.name = "y"  # type: ignore[misc]


# --- tokens ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["chat", "a.b-c_d~e", "!#$%&'*+-.^_`|~09azAZ"])
def test_is_token_true(value: str) -> None:
    assert is_token(value)


@pytest.mark.parametrize(
    "value", ["", "a b", "a;b", "a,b", "a/b", "a=b", '"a"', "a\tb", "é", "a\x7f", "a\x00"]
)
def test_is_token_false(value: str) -> None:
    assert not is_token(value)


@pytest.mark.parametrize(
    ("protocol", "bad"),
    [
        ("a b", " "),
        ("a;b", ";"),
        ("a\tb", "\t"),
        ("(x)", "("),
        ("chat\x7f", "\x7f"),
        ("chät", "ä"),
        ('a"b', '"'),
        ("a{b}", "{"),
    ],
)
def test_check_subprotocol_names_the_first_illegal_character(protocol: str, bad: str) -> None:
    with pytest.raises(ValueError) as info:
        check_subprotocol(protocol)
    assert str(info.value) == f"Illegal character {bad!r} in subprotocol."


def test_check_subprotocol_accepts_a_token() -> None:
    check_subprotocol("v2.chat.example.com")


# --- properties --------------------------------------------------------------------------

latin1_text = st.binary(max_size=200).map(lambda data: data.decode("latin-1"))
any_text = st.one_of(latin1_text, st.text(max_size=200))


@settings(max_examples=300)
@given(any_text)
def test_parse_protocols_never_raises(value: str) -> None:
    protocols, full_case = parse_protocols(value)
    assert all(protocol in full_case for protocol in protocols)


@settings(max_examples=300)
@given(any_text)
def test_parse_extensions_never_raises(value: str) -> None:
    for extension in parse_extensions(value):
        assert isinstance(extension, RequestedExtension)
