"""Idempotent durable consumers (DESIGN 4).

A handler's effects and the processed `event_id` are committed in one transaction, and the message
is acked only after that commit: a redelivery finds the id and does nothing. A batch of messages is
applied in one transaction (fast path); if anything in it fails, each message is retried on its own
so one poison message cannot hold back the others. After `max_deliver` failed deliveries a message
goes to `deadletter.<consumer>` with the reason, and to the `dead_letters` table for operators.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.bus import Bus, Outgoing, stream_for
from shared.clock import Clock, SystemClock
from shared.db import Database
from shared.events import Event, decode
from shared.infra import DeadLetter, ProcessedEvent
from shared.telemetry import continue_trace

log = logging.getLogger(__name__)
Handler = Callable[[Event, AsyncSession], Awaitable[None]]


@dataclass
class Subscription:
    """What one durable consumer handles: subject → handler, all on one stream."""

    name: str
    handlers: Mapping[str, Handler]
    deliver_all: bool = True
    stream: str = field(init=False)

    def __post_init__(self) -> None:
        streams = {stream_for(subject) for subject in self.handlers}
        if len(streams) != 1:
            raise ValueError(f"consumer {self.name}: subjects span streams {streams}")
        self.stream = streams.pop()


class Consumer:
    def __init__(self, db: Database, bus: Bus, subscription: Subscription, *, max_deliver: int = 5,
                 batch: int = 200, clock: Clock | None = None, fetch_timeout: float = 1.0) -> None:
        self.db = db
        self.bus = bus
        self.sub_spec = subscription
        self.name = subscription.name
        self.max_deliver = max_deliver
        self.batch = batch
        self.clock = clock or SystemClock()
        self.fetch_timeout = fetch_timeout
        self._stopping = False
        self._psub = None

    async def _subscribe(self) -> None:
        assert self.bus.js is not None
        js = self.bus.js
        config = ConsumerConfig(
            durable_name=self.name,
            filter_subjects=sorted(self.sub_spec.handlers),
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=30,
            max_deliver=-1,  # we count deliveries ourselves and dead-letter with the reason
            max_ack_pending=10_000,
        )
        try:
            info = await js.consumer_info(self.sub_spec.stream, self.name)
            existing = sorted(info.config.filter_subjects or [info.config.filter_subject or ""])
            if existing != config.filter_subjects:
                # A new release handles more (or fewer) subjects: update the durable consumer in place
                # (NATS >= 2.10), keeping its position in the stream.
                log.info("consumer %s: subjects %s -> %s", self.name, existing, config.filter_subjects)
                await js.add_consumer(self.sub_spec.stream, config)
        except NotFoundError:
            await js.add_consumer(self.sub_spec.stream, config)
        self._psub = await js.pull_subscribe_bind(durable=self.name, stream=self.sub_spec.stream)

    async def run(self) -> None:
        await self.bus.ready.wait()
        await self._subscribe()
        while not self._stopping:
            try:
                msgs = await self._psub.fetch(self.batch, timeout=self.fetch_timeout)
            except (TimeoutError, NatsTimeoutError):
                self._raise_if_cancelled()
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # connection lost: nats-py reconnects, we fetch again
                self._raise_if_cancelled()
                if self.bus.nc is None or self.bus.nc.is_closed:
                    return  # drained or closed for good: nothing more will arrive
                log.warning("consumer %s fetch: %s", self.name, exc)
                await asyncio.sleep(0.5)
                continue
            await self.process(msgs)

    @staticmethod
    def _raise_if_cancelled() -> None:
        # nats-py may turn a cancellation inside fetch() into a timeout; don't let it swallow ours.
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise asyncio.CancelledError

    def stop(self) -> None:
        self._stopping = True

    async def close(self) -> None:
        """Give back the pull subscription, so draining the connection does not wait on it."""
        if self._psub is not None:
            with suppress(Exception):
                await self._psub.unsubscribe()
            self._psub = None

    async def process(self, msgs: list[Msg]) -> None:
        if len(msgs) > 1:
            try:
                await self._apply_batch(msgs)
                await asyncio.gather(*(m.ack() for m in msgs))
                return
            except Exception as exc:
                log.info("consumer %s: batch of %d failed (%s); retrying one by one", self.name, len(msgs), exc)
        for msg in msgs:
            await self._process_one(msg)

    async def _apply_batch(self, msgs: list[Msg]) -> None:
        async with self.db.transaction() as session:
            batch: dict[str, tuple[Msg, Event]] = {}
            for msg in msgs:
                evt = decode(msg.subject, msg.data)
                batch.setdefault(evt.event_id, (msg, evt))  # the same event twice in one fetch: once
            # Claim the events in one statement; only those not processed before come back.
            fresh = await claim_events(session, self.db.dialect, self.name, list(batch), self.clock.now())
            for event_id, (msg, evt) in batch.items():
                if event_id in fresh:
                    await self._apply(session, msg, evt, record=False)

    async def _process_one(self, msg: Msg) -> None:
        try:
            async with self.db.transaction() as session:
                evt = decode(msg.subject, msg.data)
                seen = await session.get(ProcessedEvent, (self.name, evt.event_id))
                if seen is None:
                    await self._apply(session, msg, evt)
            await msg.ack()
        except Exception as exc:
            await self._failed(msg, exc)

    async def _apply(self, session: AsyncSession, msg: Msg, evt: Event, record: bool = True) -> None:
        handler = self.sub_spec.handlers[msg.subject]
        attributes = {"messaging.destination": msg.subject, "messaging.message.id": evt.event_id}
        if evt.deal_id:
            attributes["zabota.deal_id"] = evt.deal_id
        if evt.client_id:
            attributes["zabota.client_id"] = evt.client_id
        with continue_trace(msg.headers, f"{self.name} process {msg.subject}", attributes=attributes):
            await handler(evt, session)
        if record:
            session.add(ProcessedEvent(consumer=self.name, event_id=evt.event_id, processed_at=self.clock.now()))

    async def _failed(self, msg: Msg, exc: Exception) -> None:
        deliveries = msg.metadata.num_delivered if msg.metadata else 1
        reason = f"{type(exc).__name__}: {exc}"
        if deliveries < self.max_deliver:
            log.warning("consumer %s: %s failed (delivery %d/%d): %s",
                        self.name, msg.subject, deliveries, self.max_deliver, reason)
            await msg.nak(delay=min(0.05 * 2 ** deliveries, 5.0))
            return
        log.error("consumer %s: %s dead-lettered after %d deliveries: %s", self.name, msg.subject, deliveries, reason)
        await self._dead_letter(msg, deliveries, reason)
        await msg.term()

    async def _dead_letter(self, msg: Msg, deliveries: int, reason: str) -> None:
        headers = dict(msg.headers or {})
        event_id = headers.get("Nats-Msg-Id")
        async with self.db.transaction() as session:
            session.add(DeadLetter(consumer=self.name, subject=msg.subject, event_id=event_id,
                                   deliveries=deliveries, reason=reason[:4000], payload=msg.data,
                                   failed_at=self.clock.now()))
        dl_headers = {k: v for k, v in headers.items() if k != "Nats-Msg-Id"}
        dl_headers.update({"Zabota-Original-Subject": msg.subject, "Zabota-Failure-Reason": reason[:1000],
                           "Zabota-Deliveries": str(deliveries)})
        if event_id:
            dl_headers["Nats-Msg-Id"] = f"{self.name}:{event_id}"
        await self.bus.publish_many([Outgoing(f"deadletter.{self.name}", msg.data, dl_headers)])


async def claim_events(session: AsyncSession, dialect: str, consumer: str, event_ids: list[str],
                       now: datetime) -> set[str]:
    """Insert processed-event rows, skipping those already there; returns the ids that were new."""
    insert_fn = pg_insert if dialect == "postgresql" else sqlite_insert
    table = ProcessedEvent.__table__
    stmt = (insert_fn(table)
            .values([{"consumer": consumer, "event_id": e, "processed_at": now} for e in event_ids])
            .on_conflict_do_nothing()
            .returning(table.c.event_id))
    return set((await session.execute(stmt)).scalars())
