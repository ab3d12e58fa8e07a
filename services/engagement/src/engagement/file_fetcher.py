"""The file fetcher (issue 11 attachments): a background loop — "engagement files" in readiness — that downloads
the files inbound messages carry, outside the webhook path (a webhook is answered once its raw delivery is
stored; the inbound processor notes the files as `pending`; this loop fetches them).

A round claims due pending files (a lease: `next_try_at` moves past the download's deadline, so a crashed
fetcher's claim expires and another replica takes the file over; SKIP LOCKED on PostgreSQL), downloads a few at
a time outside any transaction, and records each outcome in a short transaction of its own:

- Telegram: `getFile` for the path, then `{TELEGRAM_API_URL}/file/bot<token>/<file_path>` (the token is put
  into the URL by the transport only: it is never in a logged or traced URL). VK and Instagram: the URL the
  platform gave — http(s) only, and only to the platforms' own file hosts (`ENGAGEMENT_FILE_HOSTS`: vk.com,
  userapi.com, vkuser.net, cdninstagram.com, fbcdn.net, fbsbx.com and their subdomains; `bad_url` otherwise),
  following at most 5 redirects, each checked the same way: a URL in a webhook never makes us fetch from our
  own network (the signature proves the sender, not that its URL is harmless).
- At most `max_bytes` (20 MB): a larger `Content-Length`, `file_size` or body is a permanent failure
  (`too_large`); the body is read in chunks and dropped as soon as it passes the limit.
- Transient — a timeout (each call, and `ENGAGEMENT_FILE_SECONDS` for the whole file), no connection, 5xx,
  429 (its `Retry-After` / `retry_after` honoured): tried again with backoff (2, 4, 8 … s, at most 5 min);
  `failed` (`gave_up`, with the last reason) after ENGAGEMENT_FILE_MAX_TRIES tries.
- Any other 4xx (an expired URL, a file Telegram no longer has): permanent (`refused`) with the platform's words.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from shared.clock import Clock
from shared.db import Database, skip_locked
from shared.loop import WakeableLoop
from shared.settings import Settings
from sqlalchemy import select

from engagement import files, rules
from engagement.channels import PATH_SECRET_HEADER, Permanent, Retry, telegram
from engagement.config import ChannelSettings
from engagement.crypto import decrypt_secrets
from engagement.file_models import MessageFile
from engagement.models import Channel
from engagement.sender import SecretPathTransport

log = logging.getLogger(__name__)

MAX_REDIRECTS = 5
SWEEP_EVERY = timedelta(hours=1)   # how often files kept past their time are looked for


class Redirect(Exception):
    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


def file_host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    """`host` is one of `allowed` or a subdomain of one (case-insensitive)."""
    host = host.lower().rstrip(".")
    return any(host == domain or host.endswith("." + domain) for domain in allowed)
LEASE_MARGIN = timedelta(seconds=60)
LONGEST_WAIT = 3600.0     # a platform asking us to wait longer than an hour is asked again after one


class Failed(Exception):
    """A permanent failure: `code` (files.TOO_LARGE | REFUSED | GAVE_UP | BAD_URL) and the words."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


@dataclass
class Job:
    id: str
    source: dict[str, Any]
    bot_token: str | None    # a Telegram file's channel's token
    missing: str | None      # why it cannot be fetched at all (its channel is gone)


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None   # an HTTP date: our own backoff instead


class FileFetcher(WakeableLoop):
    def __init__(self, db: Database, clock: Clock, channels: ChannelSettings, service_settings: Settings, *,
                 batch: int = 20, parallel: int = 4, poll_seconds: float = 5.0) -> None:
        super().__init__(poll_seconds)
        self.db, self.clock, self.channels, self.service_settings = db, clock, channels, service_settings
        self.batch, self.parallel = batch, parallel
        self.max_bytes = files.MAX_BYTES
        self.max_tries = channels.file_max_tries
        self.deadline = channels.file_seconds
        self.keep_days = channels.file_keep_days
        self.http: httpx.AsyncClient | None = None
        db.on_commit(files.FILES_FLAG, self.wake)

    def client(self) -> httpx.AsyncClient:
        if self.http is None:
            self.http = httpx.AsyncClient(timeout=httpx.Timeout(self.channels.http_timeout_seconds, connect=5.0),
                                          transport=SecretPathTransport())
        return self.http

    async def close(self) -> None:
        if self.http is not None:
            await self.http.aclose()
            self.http = None

    # ---------------------------------------------------------------- claim, fetch, record

    async def _claim(self) -> list[Job]:
        now = self.clock.now()
        async with self.db.transaction() as session:
            query = (select(MessageFile).where(MessageFile.state == files.PENDING, MessageFile.next_try_at <= now)
                     .order_by(MessageFile.next_try_at, MessageFile.id).limit(self.batch))
            rows = list((await session.execute(skip_locked(query, self.db))).scalars())
            ids = sorted({r.channel_id for r in rows})
            by_id = {c.id: c for c in (await session.execute(select(Channel).where(Channel.id.in_(ids)))).scalars()} \
                if ids else {}
            jobs = []
            for row in rows:
                row.tries += 1
                row.next_try_at = now + timedelta(seconds=self.deadline) + LEASE_MARGIN
                channel, token, missing = by_id.get(row.channel_id), None, None
                if "file_id" in (row.source or {}):
                    if channel is None or channel.kind != "telegram":
                        missing = "the Telegram channel account is gone"
                    else:
                        token = decrypt_secrets(self.service_settings, channel.secrets).get("bot_token")
                jobs.append(Job(row.id, dict(row.source or {}), token, missing))
            return jobs

    async def fetch_one(self, job: Job) -> None:
        try:
            async with asyncio.timeout(self.deadline):
                data, received = await self._download(job)
        except Failed as exc:
            await self._record(job.id, failed=exc)
        except Permanent as exc:   # Telegram refused getFile
            too_big = "too big" in exc.reason.lower()
            await self._record(job.id, failed=Failed(files.TOO_LARGE if too_big else files.REFUSED, exc.reason))
        except Retry as exc:
            await self._record(job.id, retry=exc)
        except TimeoutError:
            await self._record(job.id, retry=Retry(f"the download took longer than {self.deadline:g} s"))
        except httpx.HTTPError as exc:
            await self._record(job.id, retry=Retry(f"unreachable: {type(exc).__name__}"))
        except Exception as exc:   # an answer we could not read: retried, the loop goes on
            log.warning("fetching file %s failed: %s", job.id, type(exc).__name__)
            await self._record(job.id, retry=Retry(type(exc).__name__))
        else:
            await self._record(job.id, data=data, received=received)

    async def _download(self, job: Job) -> tuple[bytes, str]:
        if job.missing:
            raise Failed(files.REFUSED, job.missing)
        if "file_id" in job.source:
            base = self.channels.telegram_api_url
            path, size = await telegram.file_path(self.client(), base, {"bot_token": job.bot_token or ""},
                                                  str(job.source["file_id"]))
            self._check_size(size)
            return await self._get(telegram.download_url(base, path), {PATH_SECRET_HEADER: job.bot_token or ""},
                                   follow=False)
        url = str(job.source.get("url") or "")
        for _hop in range(MAX_REDIRECTS + 1):
            self._check_url(url)
            try:
                return await self._get(url, {}, follow=False)
            except Redirect as redirect:
                url = redirect.location
        raise Failed(files.REFUSED, f"more than {MAX_REDIRECTS} redirects")

    def _check_url(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise Failed(files.BAD_URL, "not an http(s) address")
        if not file_host_allowed(parts.hostname, self.channels.file_hosts):
            raise Failed(files.BAD_URL, f"{parts.hostname} is not one of the platforms' file hosts")

    def _check_size(self, size: int | None) -> None:
        if size is not None and size > self.max_bytes:
            raise Failed(files.TOO_LARGE, f"larger than {self.max_bytes // (1024 * 1024)} MB ({size} bytes)"
                         if self.max_bytes >= 1024 * 1024 else f"larger than {self.max_bytes} bytes ({size})")

    async def _get(self, url: str, headers: dict[str, str], follow: bool) -> tuple[bytes, str]:
        """The body (at most max_bytes) and the content type the server said."""
        async with self.client().stream("GET", url, headers=headers, follow_redirects=follow) as response:
            status = response.status_code
            if status == 429 or status >= 500:
                raise Retry(f"HTTP {status}", after=_seconds(response.headers.get("retry-after")))
            if status in (301, 302, 303, 307, 308) and not follow and response.headers.get("location"):
                raise Redirect(str(response.url.join(response.headers["location"])))
            if status >= 300:
                raise Failed(files.REFUSED, f"HTTP {status}")
            length = response.headers.get("content-length")
            self._check_size(int(length) if length and length.isdigit() else None)
            chunks, total = [], 0
            async for chunk in response.aiter_bytes():
                total += len(chunk)
                self._check_size(total)
                chunks.append(chunk)
            return b"".join(chunks), response.headers.get("content-type", "")

    async def _record(self, file_id: str, *, data: bytes | None = None, received: str = "",
                      retry: Retry | None = None, failed: Failed | None = None) -> None:
        now = self.clock.now()
        async with self.db.transaction() as session:
            row = await session.get(MessageFile, file_id)
            if row is None or row.state != files.PENDING:
                return
            if retry is not None and row.tries >= self.max_tries:
                retry, failed = None, Failed(files.GAVE_UP, f"gave up after {row.tries} tries: {retry.reason}")
            if retry is not None:
                wait = retry.after if retry.after is not None else rules.backoff_seconds(row.tries)
                row.next_try_at = now + timedelta(seconds=min(float(wait), LONGEST_WAIT))
                row.reason = retry.reason[:500]   # the last try's, kept if it ends in gave_up
                return
            if failed is not None:
                row.state, row.next_try_at = files.FAILED, None
                row.reason_code, row.reason = failed.code, failed.reason[:500]
                log.info("file %s not fetched (%s): %s", file_id, failed.code, failed.reason)
                return
            row.state, row.data, row.size, row.stored_at, row.next_try_at = files.STORED, data, len(data or b""), now, None
            row.content_type = files.resolved_type(row.content_type, received, row.name)
            row.reason_code = row.reason = None

    # ---------------------------------------------------------------- the loop

    async def run_due(self) -> int:
        """Fetch every due file (a few at once); how many were tried."""
        limit = asyncio.Semaphore(self.parallel)

        async def one(job: Job) -> None:
            async with limit:
                await self.fetch_one(job)

        total = 0
        while claimed := await self._claim():
            await asyncio.gather(*(one(job) for job in claimed))
            total += len(claimed)
            if len(claimed) < self.batch:
                break
        return total

    async def remove_old(self) -> int:
        """Remove the bytes of every file kept past ENGAGEMENT_FILE_KEEP_DAYS (files.remove_old); how many."""
        total = 0
        while True:
            async with self.db.transaction() as session:
                removed = await files.remove_old(session, self.clock.now(), self.keep_days)
            total += removed
            if removed < files.REMOVE_BATCH:
                if total:
                    log.info("removed %d customer files kept past %d days", total, self.keep_days)
                return total

    async def run(self) -> None:
        swept_at = None
        while not self._stopping:
            await self.run_due()   # a database outage raises: the supervisor restarts us and readiness says so
            now = self.clock.now()
            if swept_at is None or now - swept_at >= SWEEP_EVERY:
                await self.remove_old()
                swept_at = now
            await self.nap()
