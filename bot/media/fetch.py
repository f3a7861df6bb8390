"""Downloading remote images: an address guard against SSRF, a byte cap, timeouts and retries."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import aiohttp
from yarl import URL

from bot.domain.text import Text, t
from bot.errors import DownloadRefused, MediaError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Fetched:
    data: bytes
    content_type: str | None  # as the server sent it; the bytes are the authority
    url: str  # the URL that was asked for (before redirects)


_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_RETRY_STATUSES = frozenset({408, 429})
_CHUNK = 64 * 1024
NOT_DOWNLOADED = t("The image could not be downloaded.")


class _TransientError(Exception):
    """A failure worth another attempt; becomes a MediaError when attempts run out."""

    def __init__(self, user_message: Text, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.user_message = user_message
        self.detail = detail
        self.retry_after = retry_after


def redact_url(url: str | URL) -> str:
    """The URL without credentials, query or fragment: signed URLs carry their secret there."""
    try:
        u = url if isinstance(url, URL) else URL(url)
        return str(u.with_user(None).with_query(None).with_fragment(None))
    except (ValueError, TypeError):
        return "<unparseable url>"


class MediaFetcher:
    """Downloads images with a byte cap, https-only by default, retrying transient failures.

    ``allowed_hosts`` entries match the host itself and its subdomains. Redirects are followed by
    hand (at most ``max_redirects``) so every hop passes the same scheme/host checks.
    Unless ``allow_http`` is set, IP-literal hosts outside public address space and
    ``localhost`` are refused; names that *resolve* to private addresses are not caught here,
    use ``allowed_hosts`` for that.
    """

    def __init__(
        self,
        *,
        max_bytes: int,
        allow_http: bool = False,
        timeout: float = 60.0,
        connect_timeout: float = 10.0,
        allowed_hosts: frozenset[str] | None = None,
        session: aiohttp.ClientSession | None = None,
        retries: int = 2,
        backoff: float = 0.5,
        max_backoff: float = 5.0,
        max_redirects: int = 5,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if max_bytes < 1:
            raise ValueError("max_bytes must be positive")
        self._max_bytes = max_bytes
        self._allow_http = allow_http
        # Passed on every request, so an injected session is bounded too.
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=connect_timeout)
        self._allowed_hosts = (
            None
            if allowed_hosts is None
            else frozenset(h.lower().strip(".") for h in allowed_hosts)
        )
        self._session = session
        self._owns_session = session is None
        self._retries = retries
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._max_redirects = max_redirects
        self._sleep = sleep

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session if this fetcher created it; an injected one belongs to its owner."""
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _get_session(self) -> aiohttp.ClientSession:
        # Created lazily so the fetcher can be built outside a running loop.
        if self._session is None or self._session.closed:
            if not self._owns_session:
                raise RuntimeError("the injected aiohttp session is closed")
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def fetch(self, url: str) -> Fetched:
        """Download ``url`` completely, or raise MediaError with a message fit for the user."""
        target = self._parse(url)
        attempt = 0
        while True:
            try:
                data, content_type = await self._fetch_once(target)
            except _TransientError as exc:
                if attempt >= self._retries:
                    log.warning(
                        "download of %s failed after %d attempts: %s",
                        redact_url(target),
                        attempt + 1,
                        exc.detail,
                    )
                    raise MediaError(exc.user_message, detail=exc.detail) from None
                delay = min(self._backoff * 2**attempt, self._max_backoff)
                if exc.retry_after is not None:
                    delay = min(max(delay, exc.retry_after), self._max_backoff)
                attempt += 1
                log.info(
                    "download of %s failed (%s); retry %d/%d in %.2fs",
                    redact_url(target),
                    exc.detail,
                    attempt,
                    self._retries,
                    delay,
                )
                await self._sleep(delay)
            else:
                log.debug("downloaded %d bytes from %s", len(data), redact_url(target))
                return Fetched(data=data, content_type=content_type, url=url)

    def _parse(self, url: str) -> URL:
        try:
            parsed = URL(url)
        except (ValueError, TypeError):
            raise self._refuse("not a valid URL", "<unparseable url>") from None
        self._check_url(parsed)
        return parsed

    def _refuse(self, why: str, where: str) -> DownloadRefused:
        """The address is refused by policy: permanent, so the caller never retries it."""
        detail = f"refused to download {where}: {why}"
        log.warning("%s", detail)
        return DownloadRefused(t("That image link can't be used by the bot."), detail=detail)

    def _check_url(self, url: URL) -> None:
        scheme = (url.scheme or "").lower()
        allowed_schemes = ("https", "http") if self._allow_http else ("https",)
        if scheme not in allowed_schemes:
            why = f"scheme {scheme or '(none)'!r} not allowed"
            if scheme == "http":  # the one a setting allows: name it (the fake crun serves http)
                why += "; set ALLOW_HTTP_RESULTS=true to accept plain http (local testing only)"
            raise self._refuse(why, redact_url(url))
        host = (url.host or "").lower().rstrip(".")
        if not host:
            raise self._refuse("no host", redact_url(url))
        if self._allowed_hosts is not None and not any(
            host == h or host.endswith("." + h) for h in self._allowed_hosts
        ):
            raise self._refuse(f"host {host!r} not in the allowed hosts", redact_url(url))
        if not self._allow_http and _is_internal_host(host):
            raise self._refuse(f"host {host!r} is not public", redact_url(url))

    async def _fetch_once(self, target: URL) -> tuple[bytes, str | None]:
        session = self._get_session()
        current = target
        for _hop in range(self._max_redirects + 1):
            where = redact_url(current)
            try:
                async with session.get(
                    current, allow_redirects=False, timeout=self._timeout
                ) as resp:
                    if resp.status in _REDIRECTS:
                        location = resp.headers.get(aiohttp.hdrs.LOCATION)
                        if not location:
                            raise self._http_error(resp.status, where, "redirect without Location")
                        try:
                            current = current.join(URL(location))
                        except (ValueError, TypeError):
                            raise self._refuse("bad redirect Location", where) from None
                        self._check_url(current)
                        continue
                    if resp.status >= 500 or resp.status in _RETRY_STATUSES:
                        raise _TransientError(
                            t(
                                "The image server is having trouble right now; try again in a "
                                "minute."
                            ),
                            f"http {resp.status} from {where}",
                            _retry_after(resp.headers.get(aiohttp.hdrs.RETRY_AFTER)),
                        )
                    if not 200 <= resp.status < 300:
                        raise self._http_error(resp.status, where)
                    declared = resp.content_length
                    if declared is not None and declared > self._max_bytes:
                        resp.close()
                        raise self._too_big(where, f"Content-Length {declared}")
                    buf = bytearray()
                    async for chunk in resp.content.iter_chunked(_CHUNK):
                        buf += chunk
                        if len(buf) > self._max_bytes:
                            resp.close()  # drop the connection instead of draining the rest
                            raise self._too_big(where, f"more than {len(buf) - 1} bytes streamed")
                    content_type = (
                        resp.content_type if aiohttp.hdrs.CONTENT_TYPE in resp.headers else None
                    )
                    return bytes(buf), content_type
            except TimeoutError:
                raise _TransientError(
                    t("Downloading the image took too long; try again later."),
                    f"timed out fetching {where}",
                ) from None
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
                raise _TransientError(
                    t("Couldn't reach the image server; try again later."),
                    f"{type(exc).__name__} fetching {where}",
                ) from None
            except aiohttp.ClientError as exc:
                detail = f"{type(exc).__name__} fetching {where}"
                log.warning("download failed: %s", detail)
                raise MediaError(NOT_DOWNLOADED, detail=detail) from None
        raise self._http_error(0, redact_url(target), f"more than {self._max_redirects} redirects")

    def _too_big(self, where: str, how: str) -> MediaError:
        detail = f"{where} exceeds {self._max_bytes} bytes ({how})"
        log.warning("download refused: %s", detail)
        return MediaError(
            t(
                "The image is larger than the {size} the bot can download.",
                size=_human_bytes(self._max_bytes),
            ),
            detail=detail,
        )

    @staticmethod
    def _http_error(status: int, where: str, why: str = "") -> MediaError:
        detail = f"http {status} from {where}" + (f": {why}" if why else "")
        log.warning("download failed: %s", detail)
        if status in (401, 403, 404, 410):
            return MediaError(
                t("The image is no longer available (the link may have expired)."), detail=detail
            )
        return MediaError(NOT_DOWNLOADED, detail=detail)


def _is_internal_host(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not ip.is_global


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # HTTP-date form: not worth parsing for a short, capped backoff
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _human_bytes(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):g} MB"
    return f"{n / 1024:g} KB"
