"""X-Forwarded-For handling: WebSocket-Node's default, ignore_x_forwarded_for, trusted_proxies."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geventws.forwarded import client_addresses
from geventws.options import IPNetwork


def nets(*specs: str) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(spec, strict=False) for spec in specs)


def default(peer: str, header: str | None) -> tuple[str, list[str]]:
    return client_addresses(peer, header, ignore_forwarded=False, trusted_proxies=None)


def test_node_example_left_most_entry_is_believed() -> None:
    assert default("127.0.0.1", "1.1.1.1, 2.2.2.2,3.3.3.3") == (
        "1.1.1.1",
        ["1.1.1.1", "2.2.2.2", "3.3.3.3", "127.0.0.1"],
    )


@pytest.mark.parametrize("header", [None, "", " ", " , "])
def test_no_usable_header_gives_the_peer(header: str | None) -> None:
    assert default("10.0.0.5", header) == ("10.0.0.5", ["10.0.0.5"])


def test_entries_are_stripped_and_not_validated() -> None:
    assert default("127.0.0.1", " unknown ,\t2001:db8::1 ") == (
        "unknown",
        ["unknown", "2001:db8::1", "127.0.0.1"],
    )


def test_ignore_forwarded_gives_the_peer_only() -> None:
    assert client_addresses(
        "127.0.0.1", "1.1.1.1", ignore_forwarded=True, trusted_proxies=None
    ) == ("127.0.0.1", ["127.0.0.1"])
    assert client_addresses(
        "127.0.0.1", "1.1.1.1", ignore_forwarded=True, trusted_proxies=nets("127.0.0.1")
    ) == ("127.0.0.1", ["127.0.0.1"])


def trusted(peer: str, header: str | None, *specs: str) -> tuple[str, list[str]]:
    return client_addresses(peer, header, ignore_forwarded=False, trusted_proxies=nets(*specs))


def test_untrusted_peer_header_is_ignored() -> None:
    assert trusted("203.0.113.9", "1.1.1.1", "10.0.0.0/8") == ("203.0.113.9", ["203.0.113.9"])


def test_trusted_peer_right_most_untrusted_entry_wins() -> None:
    # The client forged "6.6.6.6"; the proxy appended the address it really saw.
    assert trusted("10.0.0.1", "6.6.6.6, 198.51.100.7", "10.0.0.0/8") == (
        "198.51.100.7",
        ["6.6.6.6", "198.51.100.7", "10.0.0.1"],
    )


def test_trusted_proxy_chain_is_skipped_from_the_right() -> None:
    assert trusted("10.0.0.1", "6.6.6.6, 198.51.100.7, 10.0.0.2, 10.0.0.3", "10.0.0.0/8") == (
        "198.51.100.7",
        ["6.6.6.6", "198.51.100.7", "10.0.0.2", "10.0.0.3", "10.0.0.1"],
    )


def test_all_entries_trusted_gives_the_left_most() -> None:
    assert trusted("10.0.0.1", "10.0.0.7, 10.0.0.8", "10.0.0.0/8") == (
        "10.0.0.7",
        ["10.0.0.7", "10.0.0.8", "10.0.0.1"],
    )


def test_non_ip_entry_counts_as_untrusted() -> None:
    assert trusted("10.0.0.1", "1.1.1.1, unknown, 10.0.0.2", "10.0.0.0/8") == (
        "unknown",
        ["1.1.1.1", "unknown", "10.0.0.2", "10.0.0.1"],
    )


def test_trusted_peer_without_header_gives_the_peer() -> None:
    assert trusted("10.0.0.1", None, "10.0.0.0/8") == ("10.0.0.1", ["10.0.0.1"])


def test_ipv6_networks_and_single_addresses() -> None:
    assert trusted("2001:db8::1", "2001:db9::5", "2001:db8::/32") == (
        "2001:db9::5",
        ["2001:db9::5", "2001:db8::1"],
    )
    assert trusted("127.0.0.1", "1.1.1.1", "127.0.0.1") == ("1.1.1.1", ["1.1.1.1", "127.0.0.1"])


def test_ipv4_mapped_peer_matches_an_ipv4_network() -> None:
    assert trusted("::ffff:10.0.0.1", "1.1.1.1", "10.0.0.0/8") == (
        "1.1.1.1",
        ["1.1.1.1", "::ffff:10.0.0.1"],
    )


def test_empty_trusted_list_trusts_nobody() -> None:
    assert trusted("10.0.0.1", "1.1.1.1") == ("10.0.0.1", ["10.0.0.1"])


def test_non_ip_peer_is_not_trusted() -> None:
    assert trusted("/run/app.sock", "1.1.1.1", "0.0.0.0/0", "::/0") == (
        "/run/app.sock",
        ["/run/app.sock"],
    )


@settings(max_examples=200)
@given(st.text(max_size=100), st.one_of(st.none(), st.text(max_size=200)), st.booleans())
def test_never_raises_and_peer_is_last(peer: str, header: str | None, use_trust: bool) -> None:
    trust = nets("10.0.0.0/8", "::1") if use_trust else None
    remote, addresses = client_addresses(
        peer, header, ignore_forwarded=False, trusted_proxies=trust
    )
    assert addresses[-1] == peer
    assert remote in addresses
