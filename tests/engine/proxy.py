"""A forwarding HTTP(S) proxy in front of the real engine, for faults the engine cannot be made
to produce on demand: credentials it checks, requests it stalls. Everything it does not
intercept reaches the real node unchanged and the node's real answer comes back."""

from __future__ import annotations

import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# What an interceptor returns for a request: None forwards it; (status, body) answers it.
Answer = tuple[int, bytes] | None
Interceptor = Callable[[BaseHTTPRequestHandler], Answer]
PRODUCT_HEADER = "X-Elastic-Product"


@contextmanager
def forwarding_proxy(
    upstream: str,
    intercept: Interceptor = lambda _request: None,
    *,
    tls: tuple[Path, Path] | None = None,
) -> Iterator[str]:
    """Serve on 127.0.0.1 (HTTPS with `tls` = (certificate, key)); yield the proxy's URL.
    `intercept(handler)` sees each request first (its method, path and headers) and may answer
    it, or stall it by sleeping before returning."""
    upstream = upstream.rstrip("/")

    class Handler(BaseHTTPRequestHandler):
        def _handle(self):
            answer = intercept(self)
            if answer is not None:
                return self._reply(*answer)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            request = urllib.request.Request(upstream + self.path, data=body, method=self.command)
            for header in ("Content-Type", "Accept"):  # Elasticsearch checks both agree
                if self.headers.get(header):
                    request.add_header(header, self.headers[header])
            try:
                with urllib.request.urlopen(request, timeout=120) as response:
                    self._reply(response.status, response.read(), response.headers)
            except urllib.error.HTTPError as exc:
                self._reply(exc.code, exc.read(), exc.headers)

        def _reply(self, status: int, body: bytes, headers=None):
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                # the Elasticsearch client refuses answers without the product header
                if headers is not None and headers.get(PRODUCT_HEADER):
                    self.send_header(PRODUCT_HEADER, headers[PRODUCT_HEADER])
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up on a stalled request

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    scheme = "http"
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
