"""ServerOptions: the seed's defaults and checks at construction."""

from __future__ import annotations

import dataclasses
import ipaddress
import math

import pytest

from geventws.options import OPTION_NAMES, ServerOptions

SEED_DEFAULTS = {
    "max_received_frame_size": 65536,
    "max_received_message_size": 1048576,
    "fragment_outgoing_messages": True,
    "fragmentation_threshold": 16384,
    "keepalive": True,
    "keepalive_interval": 20000,
    "drop_connection_on_keepalive_timeout": True,
    "keepalive_grace_period": 10000,
    "assemble_fragments": True,
    "auto_accept_connections": False,
    "close_timeout": 5000,
    "disable_nagle_algorithm": True,
    "ignore_x_forwarded_for": False,
    "parse_extensions": True,
    "parse_cookies": True,
}

INT_OPTIONS = [
    "max_received_frame_size",
    "max_received_message_size",
    "fragmentation_threshold",
    "max_queue",
    "max_request_header_size",
]
FLOAT_OPTIONS = [
    "keepalive_interval",
    "keepalive_grace_period",
    "close_timeout",
    "request_timeout",
    "handshake_timeout",
    "send_timeout",
]
BOOL_OPTIONS = [
    "fragment_outgoing_messages",
    "keepalive",
    "drop_connection_on_keepalive_timeout",
    "assemble_fragments",
    "auto_accept_connections",
    "disable_nagle_algorithm",
    "ignore_x_forwarded_for",
    "parse_extensions",
    "parse_cookies",
    "application_upgrades",
]


def test_defaults_equal_the_seeds() -> None:
    options = ServerOptions()
    actual = {name: getattr(options, name) for name in SEED_DEFAULTS}
    assert actual == SEED_DEFAULTS
    # Booleans are real booleans, not merely truthy.
    for name in BOOL_OPTIONS:
        assert type(getattr(options, name)) is bool


def test_defaults_of_options_beyond_the_seed() -> None:
    options = ServerOptions()
    assert options.trusted_proxies is None
    assert options.request_timeout == 30000
    assert options.max_queue == 64
    assert options.handshake_timeout == 10000
    assert options.max_request_header_size == 16384
    assert options.send_timeout == 30000
    assert options.application_upgrades is False


def test_option_names_list_every_option_once() -> None:
    assert len(OPTION_NAMES) == len(set(OPTION_NAMES))
    assert set(OPTION_NAMES) == {field.name for field in dataclasses.fields(ServerOptions)}
    listed = set(SEED_DEFAULTS) | set(INT_OPTIONS) | set(FLOAT_OPTIONS) | set(BOOL_OPTIONS)
    assert listed | {"trusted_proxies"} == set(OPTION_NAMES)


def test_options_are_frozen() -> None:
    options = ServerOptions()
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.keepalive = False  # type: ignore[misc]


def test_from_kwargs_sets_given_values_and_keeps_other_defaults() -> None:
    options = ServerOptions.from_kwargs(
        {"max_received_frame_size": 100, "assemble_fragments": False, "close_timeout": 1.5}
    )
    assert options.max_received_frame_size == 100
    assert options.assemble_fragments is False
    assert options.close_timeout == 1.5
    assert options.max_received_message_size == 1048576
    assert ServerOptions.from_kwargs({}) == ServerOptions()


def test_from_kwargs_unknown_option_raises_type_error_naming_it() -> None:
    with pytest.raises(TypeError, match="'maxReceivedFrameSize'"):
        ServerOptions.from_kwargs({"maxReceivedFrameSize": 100})
    with pytest.raises(TypeError, match="'no_such_option'"):
        ServerOptions.from_kwargs({"keepalive": True, "no_such_option": 1})


def test_constructor_unknown_option_raises_type_error_naming_it() -> None:
    with pytest.raises(TypeError, match="no_such_option"):
        ServerOptions(no_such_option=1)  # type: ignore[call-arg]


@pytest.mark.parametrize("name", INT_OPTIONS)
@pytest.mark.parametrize("value", ["100", True, False, 1.5, 100.0, None, [1]])
def test_int_option_of_wrong_type_raises_type_error_naming_it(name: str, value: object) -> None:
    with pytest.raises(TypeError, match=f"'{name}'"):
        ServerOptions.from_kwargs({name: value})


@pytest.mark.parametrize("name", FLOAT_OPTIONS)
@pytest.mark.parametrize("value", ["100", True, False, None, [1]])
def test_time_option_of_wrong_type_raises_type_error_naming_it(name: str, value: object) -> None:
    with pytest.raises(TypeError, match=f"'{name}'"):
        ServerOptions.from_kwargs({name: value})


@pytest.mark.parametrize("name", BOOL_OPTIONS)
@pytest.mark.parametrize("value", [1, 0, "true", "", None, 1.0])
def test_bool_option_of_wrong_type_raises_type_error_naming_it(name: str, value: object) -> None:
    with pytest.raises(TypeError, match=f"'{name}'"):
        ServerOptions.from_kwargs({name: value})


@pytest.mark.parametrize("name", INT_OPTIONS)
@pytest.mark.parametrize("value", [0, -1, -65536])
def test_int_option_zero_or_negative_raises_value_error_naming_it(name: str, value: int) -> None:
    with pytest.raises(ValueError, match=f"'{name}'"):
        ServerOptions.from_kwargs({name: value})


@pytest.mark.parametrize("name", FLOAT_OPTIONS)
@pytest.mark.parametrize("value", [0, 0.0, -1, -0.5, math.inf, -math.inf, math.nan])
def test_time_option_not_positive_finite_raises_value_error_naming_it(
    name: str, value: float
) -> None:
    with pytest.raises(ValueError, match=f"'{name}'"):
        ServerOptions.from_kwargs({name: value})


@pytest.mark.parametrize("name", INT_OPTIONS)
def test_int_option_accepts_one(name: str) -> None:
    assert getattr(ServerOptions.from_kwargs({name: 1}), name) == 1


@pytest.mark.parametrize("name", FLOAT_OPTIONS)
@pytest.mark.parametrize("value", [1, 0.001, 250.5, 10**9])
def test_time_option_accepts_positive_ints_and_floats(name: str, value: float) -> None:
    assert getattr(ServerOptions.from_kwargs({name: value}), name) == value


@pytest.mark.parametrize("name", BOOL_OPTIONS)
def test_bool_option_accepts_both_booleans(name: str) -> None:
    for value in (True, False):
        assert getattr(ServerOptions.from_kwargs({name: value}), name) is value


def test_replace_returns_a_checked_copy() -> None:
    options = ServerOptions(keepalive=False)
    changed = options.replace(max_received_frame_size=10)
    assert changed.max_received_frame_size == 10
    assert changed.keepalive is False
    assert options.max_received_frame_size == 65536
    with pytest.raises(ValueError, match="'fragmentation_threshold'"):
        options.replace(fragmentation_threshold=0)
    with pytest.raises(TypeError, match="'bogus'"):
        options.replace(bogus=1)


# ------------------------------------------------------------------ trusted_proxies


def test_trusted_proxies_strings_become_networks() -> None:
    options = ServerOptions(
        trusted_proxies=["10.0.0.1", "192.168.0.0/16", "::1", "2001:db8::/32"]  # type: ignore[arg-type]
    )
    assert options.trusted_proxies == (
        ipaddress.ip_network("10.0.0.1/32"),
        ipaddress.ip_network("192.168.0.0/16"),
        ipaddress.ip_network("::1/128"),
        ipaddress.ip_network("2001:db8::/32"),
    )


def test_trusted_proxies_network_with_host_bits_is_normalised() -> None:
    options = ServerOptions(trusted_proxies=["10.1.2.3/8"])  # type: ignore[arg-type]
    assert options.trusted_proxies == (ipaddress.ip_network("10.0.0.0/8"),)


def test_trusted_proxies_accepts_address_and_network_objects_and_any_iterable() -> None:
    network = ipaddress.ip_network("172.16.0.0/12")
    address = ipaddress.ip_address("127.0.0.1")
    options = ServerOptions(trusted_proxies=iter([network, address]))  # type: ignore[arg-type]
    assert options.trusted_proxies == (network, ipaddress.ip_network("127.0.0.1/32"))
    assert options.trusted_proxies[0] is network
    assert ServerOptions(trusted_proxies=()).trusted_proxies == ()
    assert ServerOptions(trusted_proxies=None).trusted_proxies is None


@pytest.mark.parametrize("value", ["10.0.0.1", b"10.0.0.1", 10, 3.5, True])
def test_trusted_proxies_not_a_list_raises_type_error(value: object) -> None:
    with pytest.raises(TypeError, match="'trusted_proxies'"):
        ServerOptions.from_kwargs({"trusted_proxies": value})


@pytest.mark.parametrize("entry", ["not-an-address", "10.0.0.300", "10.0.0.0/33", "", None])
def test_trusted_proxies_bad_entry_raises_value_error_naming_option_and_entry(
    entry: object,
) -> None:
    with pytest.raises(ValueError, match="'trusted_proxies'") as info:
        ServerOptions.from_kwargs({"trusted_proxies": ["10.0.0.1", entry]})
    assert repr(entry) in str(info.value)
