"""Limits of the webhook's HTTP server: how long a request may take to arrive, and how many connections
may be open, so slow or idle clients cannot hold the worker's sockets.

- Headers: a connection must send a complete request head within ``header_timeout`` of opening (or of
  its previous answer, through aiohttp's keep-alive timer), however slowly bytes trickle in.
- Body: the webhook reads its body within ``body_timeout`` (:func:`read_body`, else 408); a body the
  handler does not read is drained for at most that long before the connection closes.
- Connections: beyond ``max_connections`` open ones, a new connection gets ``503`` and is closed.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler
from aiohttp.web_log import AccessLogger
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger(__name__)

# Telegram's updates are a few kilobytes; aiohttp answers a longer body with 413.
MAX_BODY_BYTES = 1024**2
REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\nRetry-After: 1\r\n\r\n"
)


@dataclass(frozen=True)
class Limits:
    """How long a request may take to arrive and how many connections may be open at once."""

    header_timeout: float = 10.0
    body_timeout: float = 10.0
    max_connections: int = 100

    def runner_options(self) -> dict[str, float]:
        """Keyword arguments for aiohttp's runner that bound header and unread-body time."""
        return {"keepalive_timeout": self.header_timeout, "lingering_time": self.body_timeout}


async def read_body(request: web.Request, limits: Limits) -> bytes | web.Response:
    """The request's body, read within ``limits.body_timeout``, or the 408 to answer (and then close
    the connection) when it stalls; aiohttp's 413 for an oversized body is raised through."""
    try:
        async with asyncio.timeout(limits.body_timeout):
            return await request.read()
    except TimeoutError:
        log.warning("webhook: a request body did not arrive in time")
        response = web.Response(status=408)
        response.force_close()
        return response


class _Refusal(asyncio.Protocol):
    """Answers a connection over the limit with 503 and closes it, without reading a byte."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(REFUSAL)
        transport.close()


class _ConnectionGuard:
    """A protocol factory: aiohttp's handler while fewer than ``max_connections`` are open, else a
    refusal; a handler whose first request has not arrived within ``header_timeout`` is closed (only
    recent aiohttp releases do this themselves, and then only as their keep-alive timeout)."""

    def __init__(self, server: web.Server, limits: Limits, awaiting: set[RequestHandler]) -> None:
        self._server = server
        self._limits = limits
        self._awaiting = awaiting  # handlers whose first request has not arrived (see ``start``)
        self._connecting: set[RequestHandler] = set()

    def __call__(self) -> asyncio.BaseProtocol:
        open_ = len(self._server.connections) + len(self._connecting)
        if open_ >= self._limits.max_connections:
            log.warning("webhook: %d connections open; refused one more", open_)
            return _Refusal()
        handler = self._server()
        loop = asyncio.get_running_loop()
        # A handler counts from its creation: the transport schedules connection_made (which counts it
        # in server.connections) right after this returns, so this runs just before it.
        self._connecting.add(handler)
        loop.call_soon(self._connecting.discard, handler)
        self._awaiting.add(handler)
        loop.call_later(self._limits.header_timeout, self._first_request_due, handler)
        return handler

    def _first_request_due(self, handler: RequestHandler) -> None:
        if handler in self._awaiting:
            self._awaiting.discard(handler)
            if handler.transport is not None:
                handler.force_close()


class LimitedSite(web.TCPSite):
    """A TCP site that holds connections within ``limits``; ``awaiting`` holds the handlers whose first
    request has not arrived."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        *,
        limits: Limits,
        awaiting: set[RequestHandler],
    ) -> None:
        super().__init__(runner, host, port)
        self._limits = limits
        self._awaiting = awaiting

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site; TCPSite.start would open its own server
        server = self._runner.server
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            _ConnectionGuard(server, self._limits, self._awaiting), self._host, self._port
        )
        self._bound_port = self._server.sockets[0].getsockname()[1]


# A login link's token is a password for 15 minutes: the access log shows the path without it.
LOGIN_PREFIX = "/login/"


class TokenHidingAccessLogger(AccessLogger):
    """aiohttp's access log, with the token of a login link left out of the logged request line."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if request.path.startswith(LOGIN_PREFIX):
            request = request.clone(rel_url=LOGIN_PREFIX + "(hidden)")
        super().log(request, response, time)


async def start(
    app: web.Application, *, host: str, port: int, limits: Limits
) -> tuple[web.AppRunner, LimitedSite]:
    """Set up ``app`` and listen on ``host:port`` within ``limits``; ``cleanup()`` the runner to stop."""
    awaiting: set[RequestHandler] = set()

    @web.middleware
    async def request_arrived(request: web.Request, handler: Handler) -> web.StreamResponse:
        awaiting.discard(request.protocol)  # type: ignore[arg-type]
        return await handler(request)

    app.middlewares.insert(0, request_arrived)
    runner = web.AppRunner(app, access_log_class=TokenHidingAccessLogger, **limits.runner_options())
    await runner.setup()
    site = LimitedSite(runner, host, port, limits=limits, awaiting=awaiting)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner, site
