"""Errors as the service answers them: problem-details JSON (RFC 9457) with one line of
`detail`, never a stack trace."""

from __future__ import annotations

from starlette.responses import JSONResponse

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Content Too Large",
    414: "URI Too Long",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class Problem(Exception):
    """A request the service answers with `status` and the one-line `detail`."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def one_line(text: str) -> str:
    """`text` folded onto one line (engine reasons may hold newlines)."""
    return " ".join(str(text).split())


def problem_response(status: int, detail: str, headers: dict | None = None) -> JSONResponse:
    body = {
        "type": "about:blank",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": one_line(detail),
    }
    return JSONResponse(body, status, headers=headers, media_type="application/problem+json")
