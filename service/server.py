"""Running the application with uvicorn on a socket bound here first: a port in use is one line,
port 0 picks a free port, and tests and the load benchmark run the same server in a thread."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
from collections.abc import Iterator

from sparse_mm.errors import ConfigError


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (IPv4 or IPv6), or a one-line ConfigError."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets whose proto
    # says TCP; with it on, a response's body waited ~40 ms for the client's delayed ACK of
    # its headers on every request of a kept-alive connection
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    return sock


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def server(app, sock: socket.socket, log_level: str = "info"):
    """A uvicorn Server for `app` on `sock` (run it with `server.run(sockets=[sock])`)."""
    import uvicorn

    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False)
    return uvicorn.Server(config)


@contextlib.contextmanager
def running(app, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """`app` served by uvicorn in a thread on host:port (0: a free port); yields its base URL
    once it accepts connections, stops it afterwards."""
    sock = bind(host, port)
    found = server(app, sock, log_level="warning")
    thread = threading.Thread(target=found.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not found.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise ConfigError("the service did not start")
            time.sleep(0.02)
        name = f"[{host}]" if ":" in host else host
        yield f"http://{name}:{sock.getsockname()[1]}"
    finally:
        found.should_exit = True
        thread.join(timeout=10)
        sock.close()
