"""The Bot API request class that python-telegram-bot sends through: PTB's ``BaseRequest`` on aiohttp.

It behaves as PTB's own ``HTTPXRequest`` does towards PTB: the same body encodings, the same default
timeouts, timeouts raised as ``TimedOut`` and other network failures as ``NetworkError``; it returns
the status and body, so PTB itself turns a 429 into ``RetryAfter``, a 403 into ``Forbidden`` and so on.
"""

from __future__ import annotations

import asyncio
import ipaddress
import urllib.request
from urllib.parse import urlsplit

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

DEFAULT_BASE_URL = "https://api.telegram.org/bot"

# Connections for Bot API calls: the outbox sends to 16 chats at once, with room for the rest (startup
# calls, a webhook worker's answers). A call that waits for a connection longer than the pool timeout
# fails as TimedOut although it was never sent, so the pool must not be what limits sending.
SEND_CONNECTIONS = 32
# getUpdates runs one call at a time, on connections of its own so a long poll never holds one a send needs.
POLL_CONNECTIONS = 1


class AiohttpRequest(BaseRequest):
    """Sends Bot API requests with one ``aiohttp.ClientSession``, which :meth:`initialize` opens and
    :meth:`shutdown` closes; the timeouts are the defaults of calls that give none, ``proxy`` an HTTP
    proxy's URL (see :func:`environment_proxy`)."""

    __slots__ = ("_defaults", "_media_write_timeout", "_pool_size", "_proxy", "_session", "_slots")

    def __init__(
        self,
        connection_pool_size: int = 256,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        media_write_timeout: float | None = 20.0,
        proxy: str | None = None,
    ) -> None:
        self._pool_size = connection_pool_size
        self._defaults = (read_timeout, write_timeout, connect_timeout, pool_timeout)
        self._media_write_timeout = media_write_timeout
        self._proxy = proxy
        self._session: aiohttp.ClientSession | None = None
        # The pool is counted here: aiohttp's connector bounds waiting for a connection and connecting
        # only together, and a call that finds no free connection should fail after pool_timeout.
        self._slots = asyncio.Semaphore(connection_pool_size)

    @property
    def read_timeout(self) -> float | None:
        """The read timeout of calls that give none (PTB adds getUpdates' ``timeout`` to it)."""
        return self._defaults[0]

    def _open(self) -> aiohttp.ClientSession:
        self._slots = asyncio.Semaphore(self._pool_size)  # of this event loop
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._pool_size),
            cookie_jar=aiohttp.DummyCookieJar(),
            # Not trust_env: it reads .netrc and the proxy variables in a thread for every request.
        )
        return self._session

    async def initialize(self) -> None:
        """Open the session (again, after :meth:`shutdown`)."""
        if self._session is None or self._session.closed:
            self._open()

    async def shutdown(self) -> None:
        """Close the session and its connections; calls after this raise until :meth:`initialize`."""
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """Make one request; return the HTTP status and the body."""
        session = self._session
        if session is None:  # like HTTPXRequest, usable before initialize()
            session = self._open()
        elif session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")

        files = request_data.multipart_data if request_data is not None else None
        read = _given(read_timeout, self._defaults[0])
        write = _given(write_timeout, self._media_write_timeout if files else self._defaults[1])
        connect = _given(connect_timeout, self._defaults[2])
        pool = _given(pool_timeout, self._defaults[3])
        # aiohttp has no write timeout, and its read timer starts once the body is sent: the whole call
        # is bounded by the sum of the phases instead, so a stalled upload ends too.
        total = None
        if read is not None and write is not None and connect is not None:
            total = connect + write + read
        timeout = aiohttp.ClientTimeout(total=total, connect=connect, sock_connect=connect, sock_read=read)

        headers = {"User-Agent": self.USER_AGENT}
        data: aiohttp.FormData | bytes | None = None
        if request_data is not None and files:
            form = aiohttp.FormData()
            for name, value in request_data.json_parameters.items():
                form.add_field(name, value)
            for name, (filename, content, content_type) in files.items():
                form.add_field(name, content, filename=filename or name, content_type=content_type)
            data = form
        elif request_data is not None:
            data = request_data.url_encoded_parameters().encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"

        await self._take_slot(pool)
        try:
            async with session.request(
                method, url, data=data, headers=headers, timeout=timeout, proxy=self._proxy
            ) as response:
                return response.status, await response.read()
        except TimeoutError as exc:  # before OSError, of which it is a kind
            raise TimedOut from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise NetworkError(f"aiohttp.{exc.__class__.__name__}: {exc}") from exc
        finally:
            self._slots.release()

    async def _take_slot(self, pool_timeout: float | None) -> None:
        if not self._slots.locked():
            await self._slots.acquire()  # free: returns at once
            return
        try:
            async with asyncio.timeout(pool_timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise TimedOut(
                "Pool timeout: All connections in the connection pool are occupied. Request was *not* "
                "sent to Telegram. Consider adjusting the connection pool size or the pool timeout."
            ) from None


def _given(value: ODVInput[float], default: float | None) -> float | None:
    return default if isinstance(value, DefaultValue) else value


def bot_requests(base_url: str | None = None) -> tuple[AiohttpRequest, AiohttpRequest]:
    """The request for Bot API calls and the one for getUpdates, as PTB's ``request`` and
    ``get_updates_request``; through the proxy the environment names for ``base_url``, if any."""
    proxy = environment_proxy(base_url or DEFAULT_BASE_URL)
    return AiohttpRequest(connection_pool_size=SEND_CONNECTIONS, proxy=proxy), AiohttpRequest(
        connection_pool_size=POLL_CONNECTIONS, proxy=proxy
    )


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def environment_proxy(base_url: str) -> str | None:
    """The proxy ``HTTPS_PROXY``/``HTTP_PROXY`` names for the Bot API's host (None where ``NO_PROXY``
    exempts it), read once at start-up, as httpx read it for every call."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    if not host or host == "localhost" or _loopback(host) or urllib.request.proxy_bypass(host):
        return None
    return urllib.request.getproxies().get(parts.scheme or "https")
