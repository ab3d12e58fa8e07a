"""NATS JetStream: the connection, the streams, and batched publishing with de-duplication ids."""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from collections.abc import Sequence
from dataclasses import dataclass

import nats
from nats.aio.client import Client as NATS
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import APIError, BadRequestError

log = logging.getLogger(__name__)

# One stream per publishing service (subjects `<service>.>`), plus the dead letters.
STREAMS = {
    "CLIENTS": ["clients.>"],
    "CONTENT": ["content.>"],
    "ENGAGEMENT": ["engagement.>"],
    "PAYROLL": ["payroll.>"],
    "SYSTEM": ["system.>"],
    "DEADLETTER": ["deadletter.>"],
}
DUPLICATE_WINDOW_SECONDS = 600  # JetStream drops a re-sent Nats-Msg-Id within this window


def tls_context(environ: dict[str, str] | None = None) -> ssl.SSLContext | None:
    """TLS to NATS when its client port requires it (the prod overlay, where partners connect from outside):
    `NATS_CA` names the CA file that signed the servers' certificate (the variable the `nats` CLI reads
    too); the server's name is checked against the host of NATS_URL. None (plain) when unset."""
    ca_file = (os.environ if environ is None else environ).get("NATS_CA", "")
    if not ca_file:
        return None
    context = ssl.create_default_context(cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def stream_for(subject: str) -> str:
    prefix = subject.split(".", 1)[0]
    name = prefix.upper()
    if name not in STREAMS:
        raise ValueError(f"no stream for subject {subject}")
    return name


@dataclass(frozen=True)
class Outgoing:
    subject: str
    payload: bytes
    headers: dict[str, str]


class Bus:
    """One NATS connection per service process; reconnects forever, so a NATS restart is survived."""

    def __init__(self, url: str, name: str, replicas: int = 1) -> None:
        self.url = url
        self.name = name
        self.replicas = replicas  # JetStream replicas of the streams it creates (ZABOTA_STREAM_REPLICAS)
        self.nc: NATS | None = None
        self.js: JetStreamContext | None = None
        self.ready = asyncio.Event()

    @property
    def is_connected(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    async def connect(self, retry_forever: bool = True) -> None:
        """Connect (retrying while NATS is not up yet) and make sure the streams exist."""
        delay = 0.2
        while True:
            try:
                self.nc = await nats.connect(
                    self.url,
                    name=self.name,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.25,
                    connect_timeout=2,
                    # Shutdown must fit in Kubernetes' grace period; pending pull requests never "drain".
                    drain_timeout=5,
                    error_cb=self._on_error,
                    tls=tls_context(),
                )
                break
            except Exception as exc:
                if not retry_forever:
                    raise
                log.warning("NATS at %s unreachable (%s); retrying in %.1fs", self.url, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        self.js = self.nc.jetstream(timeout=10)
        await ensure_streams(self.js, self.replicas)
        self.ready.set()

    async def _on_error(self, exc: Exception) -> None:
        log.debug("NATS: %s", exc)

    async def publish_many(self, messages: Sequence[Outgoing], timeout: float = 5.0) -> None:
        """Publish and wait for every PubAck; pipelined, so a batch costs about one round trip.

        Raises if any message was not stored (an APIError from JetStream, or not every ack within
        `timeout`, one deadline for the whole batch): the caller keeps its outbox rows and publishes
        again; JetStream drops the ids it already has.

        Cost matters here (issue 7 §5): the relay shares its event loop with the service's requests.
        `publish_async` is called without `wait_stall`, which on Python 3.11 would wrap every message
        in `asyncio.wait_for` (a task and two loop turns each, so a batch of 500 waited behind 1,000
        turns of a busy loop). Without it a message is appended to the connection's write buffer with no
        suspension at all, and the batch waits once, for the last PubAck.
        """
        assert self.js is not None, "bus not connected"
        futures: list[asyncio.Future] = []
        try:
            async with asyncio.timeout(timeout):
                for m in messages:
                    futures.append(await self.js.publish_async(m.subject, m.payload, headers=m.headers))
                await asyncio.gather(*futures)
        finally:
            for future in futures:
                if not future.done():
                    future.cancel()  # frees its slot of the client's pending-acks semaphore

    async def drain(self) -> None:
        if self.nc is not None and not self.nc.is_closed:
            try:
                await self.nc.drain()
            except Exception as exc:  # a connection already gone has nothing to drain
                log.debug("drain: %s", exc)
        self.ready.clear()


NO_SUITABLE_PEERS = 10005  # JetStream: a replicated stream's peers are not all up yet (a cluster starting)


async def ensure_streams(js: JetStreamContext, replicas: int = 1, wait_seconds: float = 120.0) -> None:
    """Create (or update) the streams, with `replicas` copies each. On a cluster that has just started, a
    replicated stream cannot be placed until enough servers are up, and a request reaching a meta leader that
    is just stepping down gets no answer at all: both are waited out (bounded), not fatal."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    for name, subjects in STREAMS.items():
        config = StreamConfig(
            name=name,
            subjects=subjects,
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            duplicate_window=DUPLICATE_WINDOW_SECONDS,
            num_replicas=replicas,
        )
        delay = 0.2
        while True:
            try:
                await _add_or_update(js, config)
                break
            except APIError as exc:
                if exc.err_code != NO_SUITABLE_PEERS or loop.time() >= deadline:
                    raise
                log.info("stream %s: waiting for %d JetStream peers (%s)", name, replicas, exc.description)
            except NatsTimeout:
                if loop.time() >= deadline:
                    raise
                log.info("stream %s: JetStream did not answer, asking again", name)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def _add_or_update(js: JetStreamContext, config: StreamConfig) -> None:
    try:
        await js.add_stream(config)
    except BadRequestError as exc:
        if exc.err_code == NO_SUITABLE_PEERS:
            raise
        # Already there with other settings (an older deployment): keep it, update what we own.
        await js.update_stream(config)
