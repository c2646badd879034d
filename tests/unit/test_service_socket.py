"""The service's listening socket: each accepted connection must have Nagle's algorithm off, or
a kept-alive client waits ~40 ms for every response body (the delayed ACK of its headers)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from service.server import bind
from sparse_mm.errors import ConfigError


def test_accepted_connections_have_tcp_nodelay():
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    seen: list[int] = []

    async def main() -> None:
        def accepted(reader, writer) -> None:
            raw = writer.get_extra_info("socket")
            seen.append(raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(accepted, sock=sock)
        async with server:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            for _ in range(100):
                if seen:
                    break
                await asyncio.sleep(0.01)
            writer.close()

    asyncio.run(main())
    assert seen and seen[0] != 0  # asyncio set TCP_NODELAY: the socket says it is TCP


def test_a_taken_port_is_one_line():
    first = bind("127.0.0.1", 0)
    try:
        with pytest.raises(ConfigError, match=r"cannot listen on 127\.0\.0\.1") as caught:
            bind("127.0.0.1", first.getsockname()[1])
        assert "\n" not in str(caught.value)
    finally:
        first.close()
