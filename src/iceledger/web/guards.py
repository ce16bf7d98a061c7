"""What the server does to every response and every download: security headers and a rate limit.

The Content-Security-Policy allows only the server's own origin. Vega compiles its expressions
with `new Function` unless told otherwise; the pages embed charts with vega-embed's `ast: true`,
which makes Vega interpret expressions instead, so neither 'unsafe-eval' nor 'unsafe-inline' is
needed (tests/test_browser_dashboard.py records CSP violations and expects none).
"""

from __future__ import annotations

import threading
import time

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


class SecurityHeaders:
    """ASGI middleware adding SECURITY_HEADERS to every HTTP response (and no `server` header)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
                if "server" in headers:
                    del headers["server"]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class HeadAsGet:
    """ASGI middleware answering HEAD as GET without the body (FastAPI routes GET only), so a
    client checking a URL gets its headers, not 405."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        ended = False

        async def send_headers_only(message: Message) -> None:
            nonlocal ended
            if message["type"] == "http.response.body":
                if ended:
                    return
                # One empty body ends the response; the rest of a streamed body is dropped.
                ended = True
                message = {**message, "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_headers_only)


class DownloadBudget:
    """A token bucket per client: `per_minute` downloads a minute, in bursts of up to `burst`.

    Buckets of clients not seen for a while are dropped so that memory stays bounded.
    """

    _IDLE_SECONDS = 600

    def __init__(self, per_minute: float, burst: int, clock=time.monotonic):
        if per_minute <= 0 or burst < 1:
            raise ValueError("a download budget needs per_minute > 0 and burst >= 1")
        self.rate = per_minute / 60.0
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, client: str) -> float:
        """Spend one token; returns 0 if allowed, else the seconds until a token is available."""
        now = self._clock()
        with self._lock:
            tokens, seen = self._buckets.get(client, (float(self.burst), now))
            tokens = min(self.burst, tokens + (now - seen) * self.rate)
            if tokens >= 1:
                self._buckets[client] = (tokens - 1, now)
                wait = 0.0
            else:
                self._buckets[client] = (tokens, now)
                wait = (1 - tokens) / self.rate
            if len(self._buckets) > 10_000:
                self._forget_idle(now)
        return wait

    def _forget_idle(self, now: float) -> None:
        for client, (_, seen) in list(self._buckets.items()):
            if now - seen > self._IDLE_SECONDS:
                del self._buckets[client]


def fewer_malloc_arenas(arenas: int = 2) -> None:
    """Cap glibc's malloc arenas for this process (as MALLOC_ARENA_MAX does).

    The server computes in a pool of threads; glibc gives each busy thread an arena of its own and
    rarely hands their freed pages back, so a burst of distinct requests leaves the process far
    larger than what it holds. A no-op where the C library is not glibc."""
    import ctypes
    import ctypes.util

    m_arena_max = -8  # glibc's <malloc.h>
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(m_arena_max, arenas)
    except (OSError, AttributeError):
        pass
