"""websockets (asyncio) echo server for the benchmarks.

    python websockets_echo.py --port PORT

``websockets.asyncio.server.serve`` with compression=None (no permessage-deflate, like the
other servers), ping_interval=None (keepalive off, as for every peer) and max_size 4 MiB.
Other settings are the library's defaults. A text message starting with "broadcast:" is sent,
unchanged, to every open connection with ``websockets.asyncio.server.broadcast``. Connections
the load generator drops without a Close end quietly (instead of a logged traceback each).
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

LIMIT = 4 * 1024 * 1024


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()

    async def handler(connection: ServerConnection) -> None:
        try:
            async for message in connection:
                if isinstance(message, str) and message.startswith("broadcast:"):
                    broadcast(server.connections, message)
                else:
                    await connection.send(message)
        except ConnectionClosed:  # the load generator drops connections without a Close
            pass

    stop = asyncio.get_running_loop().create_future()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set_result, None)
    async with serve(
        handler,
        "127.0.0.1",
        args.port,
        compression=None,
        ping_interval=None,
        max_size=LIMIT,
    ) as server:
        print(f"ready websockets on {args.port}", flush=True)
        await stop


if __name__ == "__main__":
    asyncio.run(main())
