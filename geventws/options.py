"""The server's options: every option of the seed, with its default, checked at construction.

Times are in milliseconds and sizes in bytes, as in the seed, so the numbers read the same.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """Settings shared by a :class:`~geventws.server.WebSocketServer` and its connections.

    Construction checks every value: an unknown name raises ``TypeError`` naming it, a wrong
    type raises ``TypeError`` and an out-of-range number ``ValueError``, each naming the option.
    """

    #: Largest frame payload accepted; a larger one fails the connection with 1009.
    max_received_frame_size: int = 0x10000
    #: Largest message (all its frames together) accepted; larger fails with 1009.
    max_received_message_size: int = 0x100000
    #: Split outgoing messages longer than ``fragmentation_threshold`` into several frames.
    fragment_outgoing_messages: bool = True
    #: Largest payload of an outgoing data frame when fragmenting.
    fragmentation_threshold: int = 0x4000
    #: Ping each client after ``keepalive_interval`` ms without data from it.
    keepalive: bool = True
    keepalive_interval: float = 20000
    #: Drop a client that sends nothing within ``keepalive_grace_period`` ms after a ping.
    drop_connection_on_keepalive_timeout: bool = True
    keepalive_grace_period: float = 10000
    #: Deliver whole messages; when False, every frame also goes to ``frame`` listeners.
    assemble_fragments: bool = True
    #: Accept every valid handshake without a ``request`` event.
    auto_accept_connections: bool = False
    #: After sending a Close, wait this long (ms) for the peer's before closing the socket.
    close_timeout: float = 5000
    #: Set TCP_NODELAY on every connection.
    disable_nagle_algorithm: bool = True
    #: Ignore ``X-Forwarded-For`` (set True unless a trusted proxy is in front).
    ignore_x_forwarded_for: bool = False
    #: Parse ``Sec-WebSocket-Extensions`` into ``request.requested_extensions``.
    parse_extensions: bool = True
    #: Parse ``Cookie`` into ``request.cookies``.
    parse_cookies: bool = True
    # Options beyond the seed.
    #: When set, ``X-Forwarded-For`` counts only if the peer is one of these addresses/networks.
    trusted_proxies: tuple[IPNetwork, ...] | None = None
    #: Reject (503) a request that no listener accepted or rejected within this many ms.
    request_timeout: float = 30000
    #: Received messages (or events) held for the application before reading pauses.
    max_queue: int = 64
    #: Time (ms) a client has to send its request head; then 408 (or the socket closes).
    handshake_timeout: float = 10000
    #: Largest request head (request line and headers) in bytes; larger gets 431.
    max_request_header_size: int = 16384
    #: Time (ms) a send may wait for a peer that does not read; then the connection is dropped.
    send_timeout: float = 30000
    #: Hand upgrade requests to the WSGI application, whose view answers them through
    #: :func:`geventws.wsgi.upgrade_request`; no ``request`` event is emitted then.
    application_upgrades: bool = False

    def __post_init__(self) -> None:
        for option in fields(self):
            value = getattr(self, option.name)
            if option.name == "trusted_proxies":
                object.__setattr__(self, option.name, _networks(value))
            elif option.type == "bool":
                if not isinstance(value, bool):
                    raise TypeError(f"option {option.name!r} must be a bool, got {value!r}")
            elif option.type == "int":
                if isinstance(value, bool) or not isinstance(value, int):
                    raise TypeError(f"option {option.name!r} must be an int, got {value!r}")
                if value < 1:
                    raise ValueError(f"option {option.name!r} must be at least 1, got {value!r}")
            elif option.type == "float":
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise TypeError(f"option {option.name!r} must be a number, got {value!r}")
                if not value > 0 or value == float("inf"):
                    raise ValueError(
                        f"option {option.name!r} must be a positive number of ms, got {value!r}"
                    )

    @classmethod
    def from_kwargs(cls, options: dict[str, Any]) -> ServerOptions:
        """Build options from keyword arguments, naming any unknown one in the ``TypeError``."""
        known = {option.name for option in fields(cls)}
        for name in options:
            if name not in known:
                raise TypeError(f"unknown option {name!r}; known options: {sorted(known)}")
        return cls(**options)

    def replace(self, **changes: Any) -> ServerOptions:
        """Return a copy with ``changes`` applied (and checked)."""
        current = {option.name: getattr(self, option.name) for option in fields(self)}
        current.update(changes)
        return ServerOptions.from_kwargs(current)


def _networks(value: Any) -> tuple[IPNetwork, ...] | None:
    if value is None:
        return None
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise TypeError(
            f"option 'trusted_proxies' must be a list of addresses or networks, got {value!r}"
        )
    networks = []
    for item in value:
        if isinstance(item, ipaddress.IPv4Network | ipaddress.IPv6Network):
            networks.append(item)
            continue
        try:
            networks.append(ipaddress.ip_network(str(item), strict=False))
        except ValueError:
            raise ValueError(
                f"option 'trusted_proxies' has an entry that is not an address or network: {item!r}"
            ) from None
    return tuple(networks)


OPTION_NAMES: tuple[str, ...] = tuple(option.name for option in fields(ServerOptions))

__all__ = ["OPTION_NAMES", "ServerOptions"]
