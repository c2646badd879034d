"""The service's outer layer (pure ASGI middleware): request size limits, the optional API key
for /api/, and security headers on every response. It runs before routing, so a refused request
costs no encoding and no engine call."""

from __future__ import annotations

import hmac

from service.params import Limits
from service.problems import problem_response

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    # the page loads its own script, style and images only (blob: for images fetched with a key)
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' blob:; frame-ancestors 'none'",
    ),
]


class Guard:
    def __init__(self, app, limits: Limits, api_key: str | None) -> None:
        self.app = app
        self.limits = limits
        self.key = api_key.encode() if api_key else None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self.refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def refusal(self, scope):
        """The problem response for a request refused before routing, or None."""
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        size = len(scope.get("raw_path") or scope["path"].encode()) + len(scope["query_string"])
        if size > self.limits.max_url_bytes:
            return problem_response(
                414, f"the request's URL is {size} bytes; at most {self.limits.max_url_bytes}"
            )
        length = headers.get(b"content-length", b"0")
        if (
            not length.isdigit()
            or int(length) > self.limits.max_body_bytes
            or (b"transfer-encoding" in headers)
        ):
            return problem_response(
                413, f"request bodies are limited to {self.limits.max_body_bytes} bytes"
            )
        if (
            self.key is not None
            and scope["path"].startswith("/api/")
            and not hmac.compare_digest(_given_key(headers), self.key)
        ):
            return problem_response(
                401,
                "this service needs its API key: send 'Authorization: Bearer KEY' or "
                "'X-API-Key: KEY'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return None


def _given_key(headers: dict[bytes, bytes]) -> bytes:
    auth = headers.get(b"authorization", b"")
    if auth[:7].lower() == b"bearer ":
        return auth[7:].strip()
    return headers.get(b"x-api-key", b"")
