"""TLS for tests: a throw-away certificate authority (trustme) and matching SSL contexts."""

from __future__ import annotations

import functools
import ssl
from dataclasses import dataclass

import gevent.ssl
import trustme
from rawclient import RawClient


@dataclass(frozen=True)
class TLSContexts:
    """A server context (for gevent servers) and client contexts that trust it: ``client``
    for blocking clients in a thread, ``gevent_client`` for clients in the test's greenlet."""

    server: ssl.SSLContext
    client: ssl.SSLContext
    gevent_client: ssl.SSLContext


@functools.lru_cache(maxsize=1)
def _authority() -> tuple[trustme.CA, trustme.LeafCert]:
    ca = trustme.CA()
    return ca, ca.issue_cert("127.0.0.1", "localhost")


def tls_contexts() -> TLSContexts:
    """Fresh contexts for a certificate valid for 127.0.0.1 and localhost.

    The server context is gevent's (so the server's TLS sockets cooperate with the hub); the
    ``client`` context is the standard library's, for blocking clients run in a thread;
    ``gevent_client`` is gevent's, for sockets used in the test's own greenlet.
    """
    ca, cert = _authority()
    # gevent.ssl.create_default_context() returns a *standard library* context unless the
    # process is monkey-patched; its sockets would block the hub. Build gevent's own class.
    server = gevent.ssl.SSLContext(gevent.ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(server)
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(client)
    gevent_client = gevent.ssl.SSLContext(gevent.ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(gevent_client)
    return TLSContexts(server=server, client=client, gevent_client=gevent_client)


def tls_raw_client(port: int, contexts: TLSContexts, *, strict_eof: bool = True) -> RawClient:
    """A :class:`rawclient.RawClient` speaking TLS (gevent's SSL socket, in this greenlet).

    With ``strict_eof`` a TCP EOF that is not preceded by the server's TLS ``close_notify``
    raises ``ssl.SSLEOFError`` instead of reading as a clean end.
    """
    client = RawClient(port)
    client.sock = contexts.gevent_client.wrap_socket(
        client.sock, server_hostname="127.0.0.1", suppress_ragged_eofs=not strict_eof
    )
    return client
