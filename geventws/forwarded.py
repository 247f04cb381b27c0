"""Which address a request comes from, given the peer and its ``X-Forwarded-For`` header.

WebSocket-Node trusts ``X-Forwarded-For`` from anyone by default, and so does geventws (the
seed's ``ignore_x_forwarded_for=False``): any client can then claim any address. Deployments
without a proxy in front should set ``ignore_x_forwarded_for=True``; deployments behind known
proxies should list them in ``trusted_proxies`` so that the header only counts when it was
written by one of them.
"""

from __future__ import annotations

import ipaddress
import re

from .options import IPNetwork

_SEPARATOR = re.compile(r",\s*")


def _is_trusted(address: str, networks: tuple[IPNetwork, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [ip]
    # A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; match them against v4 networks.
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        candidates.append(ip.ipv4_mapped)
    return any(candidate in network for candidate in candidates for network in networks)


def client_addresses(
    peer: str,
    forwarded_for: str | None,
    *,
    ignore_forwarded: bool,
    trusted_proxies: tuple[IPNetwork, ...] | None,
) -> tuple[str, list[str]]:
    """Return ``(remote_address, remote_addresses)`` for a request from ``peer``.

    ``remote_addresses`` lists the forwarded addresses (the header split on commas, each
    stripped, empty entries left out) followed by ``peer``; without a usable header, or with
    ``ignore_forwarded``, it is ``[peer]`` and ``remote_address`` is ``peer``.

    With ``trusted_proxies`` ``None`` (WebSocket-Node's behaviour) the header is believed and
    ``remote_address`` is its left-most entry. With ``trusted_proxies`` set, the header counts
    only when ``peer`` is in one of those networks; ``remote_address`` is then the right-most
    entry that is not itself a trusted proxy (an entry that is not an IP address counts as
    untrusted), or the left-most entry when all of them are trusted.
    """
    if ignore_forwarded or not forwarded_for:
        return peer, [peer]
    entries = [entry.strip() for entry in _SEPARATOR.split(forwarded_for)]
    entries = [entry for entry in entries if entry]
    if not entries:
        return peer, [peer]
    if trusted_proxies is None:
        return entries[0], [*entries, peer]
    if not _is_trusted(peer, trusted_proxies):
        return peer, [peer]
    for entry in reversed(entries):
        if not _is_trusted(entry, trusted_proxies):
            return entry, [*entries, peer]
    return entries[0], [*entries, peer]


__all__ = ["client_addresses"]
