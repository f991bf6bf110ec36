"""A TCP proxy that holds every chunk for a fixed time in each direction: a network between
the application and its database on a single machine (bench/hotpath.py --db-delay-ms).

    python -m bench.harness.netdelay LISTEN_PORT TARGET_PORT DELAY_MS

Loopback only. asyncio's timers wake at millisecond granularity, so the round trip it adds is
not 2 × DELAY_MS: measure it (hotpath prints `db_round_trip_ms`) rather than assume it. Chunks
keep their order in each direction (one queue and one writer per direction).
"""

from __future__ import annotations

import asyncio
import collections
import sys
import time


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay_s: float) -> None:
    queue: collections.deque[tuple[float, bytes]] = collections.deque()
    ready = asyncio.Event()
    closed = False

    async def forward() -> None:
        while True:
            while not queue:
                if closed:
                    writer.close()
                    return
                ready.clear()
                await ready.wait()
            due, data = queue[0]
            if (wait := due - time.monotonic()) > 0:
                await asyncio.sleep(wait)
            queue.popleft()
            writer.write(data)

    forwarder = asyncio.create_task(forward())
    while data := await reader.read(65536):
        queue.append((time.monotonic() + delay_s, data))
        ready.set()
    closed = True
    ready.set()
    await forwarder


async def serve(listen_port: int, target_port: int, delay_ms: float) -> None:
    delay_s = delay_ms / 1000

    async def connection(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target_port)
        await asyncio.gather(_pipe(client_reader, server_writer, delay_s), _pipe(server_reader, client_writer, delay_s),
                             return_exceptions=True)

    server = await asyncio.start_server(connection, "127.0.0.1", listen_port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])))
