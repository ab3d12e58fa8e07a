"""Idempotent durable consumers (DESIGN 4) that never die and never blame a message for an outage.

A handler's effects and the processed `event_id` are committed in one transaction, and the message
is acked only after that commit: a redelivery finds the id and does nothing. A batch of messages is
applied in one transaction (fast path); if anything in it fails, each message is retried on its own
so one poison message cannot hold back the others.

**Two kinds of failure** (issue 7 §3):

- *Transient* — the database or NATS unreachable, a serialization failure, a deadlock, a lock timeout,
  SQLite's "database is locked", a table missing while a migration runs (`shared.errors.is_transient`).
  That is not the message's fault, so it must not spend the message's delivery budget. The consumer
  *holds* the messages it has in hand: it keeps telling JetStream they are in progress (`+WPI`, so they
  are not redelivered to anyone) and retries them with back-off (0.1 s doubling to 5 s) for as long as
  the outage lasts, then goes on. Meanwhile its `health` says `retrying` with the error, so
  `/health/ready` answers 503 naming it; the outage is logged once when it starts and once when it ends.
  Nothing is nak'ed, so JetStream's delivery count does not grow (it grows by one only if NATS itself
  goes away while messages are held, or the process dies).
- *The message's own* — anything else (a handler refusing the event, a payload that does not decode).
  The message is nak'ed with a growing delay and dead-lettered after `max_deliver` deliveries, and no
  sooner than `dead_letter_after` seconds (default 60) after its first failure: the default delays
  double and add up to that spread (with 5 deliveries and 60 s: 4, 8, 16, 32 s), and the consumer's
  clock checks it, so a burst of redeliveries can never dead-letter a message within seconds.

A dead letter is written once per message: the `dead_letters` row is unique on (consumer, event id) —
a replay that fails again updates it — and the `deadletter.<consumer>` message carries a de-duplication id.

**History for new subjects** (issue 7 §3). A release that handles a subject its durable consumer did
not handle before updates the durable in place (keeping its position, so the subjects it already
handled are not redelivered: their `processed_events` rows may have been pruned by retention) and
creates a companion durable `<name>__history` that delivers the new subjects' events already on the
stream, up to the position the main durable had reached; the main durable delivers everything after
it. The companion is durable, so a crash in the middle resumes; it is deleted when done. A subject that
was handled, dropped by a release and handled again gets its history from the point it was dropped
(recorded in the durable's metadata).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.bus import Bus, Outgoing, stream_for
from shared.clock import Clock, SystemClock
from shared.db import Database
from shared.errors import describe, is_transient
from shared.events import Event, decode
from shared.infra import DeadLetter, ProcessedEvent
from shared.loop import LoopHealth
from shared.telemetry import continue_trace, messaging_attributes

log = logging.getLogger(__name__)
Handler = Callable[[Event, AsyncSession], Awaitable[None]]
ACK_WAIT_SECONDS = 30  # held messages get a +WPI every third of it
HISTORY_SUFFIX = "__history"
META_HANDLED = "zabota.handled"
META_DROPPED = "zabota.dropped"
META_FROM = "zabota.from"
META_UNTIL = "zabota.until"
# A processed_events row that says "this consumer has subscribed before"; retention never prunes it.
SUBSCRIBED_MARK = "zabota:subscribed"


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


def retry_schedule(max_deliver: int, spread_seconds: float) -> Callable[[int], float]:
    """Nak delays after the n-th failed delivery: doubling, adding up to `spread_seconds` over the tries."""
    gaps = max(max_deliver - 1, 1)
    unit = spread_seconds / (2 ** gaps - 1)

    def delay(deliveries: int) -> float:
        return max(unit * 2 ** (min(deliveries, gaps) - 1), 0.05)

    return delay


class Consumer:
    def __init__(self, db: Database, bus: Bus, subscription: Subscription, *, max_deliver: int = 5,
                 batch: int = 200, clock: Clock | None = None, fetch_timeout: float = 1.0,
                 dead_letter_after: float = 60.0, retry_delay: Callable[[int], float] | None = None,
                 retention_days: int = 14, ack_wait: float = ACK_WAIT_SECONDS) -> None:
        self.db = db
        self.bus = bus
        self.sub_spec = subscription
        self.name = subscription.name
        self.max_deliver = max(max_deliver, 1)
        self.batch = batch
        self.clock = clock or SystemClock()
        self.fetch_timeout = fetch_timeout
        self.dead_letter_after = dead_letter_after
        self.retry_delay = retry_delay or retry_schedule(self.max_deliver, dead_letter_after)
        self.retention_days = retention_days
        self.ack_wait = ack_wait
        self.health = LoopHealth(f"consumer {self.name}")
        self._stopping = False
        self._psub = None
        self._inflight: dict[int, Msg] = {}  # by id(): messages in hand, not yet acked, nak'ed or termed
        self._first_failure: dict[tuple[str, int], datetime] = {}

    @property
    def history_name(self) -> str:
        return self.name + HISTORY_SUFFIX

    # ------------------------------------------------------------------ the durable consumer(s)

    def _config(self, durable: str, subjects: list[str], **extra: Any) -> ConsumerConfig:
        return ConsumerConfig(durable_name=durable, filter_subjects=subjects, ack_policy=AckPolicy.EXPLICIT,
                              ack_wait=self.ack_wait,
                              max_deliver=-1,  # we count deliveries ourselves and dead-letter with the reason
                              max_ack_pending=10_000, **extra)

    async def _subscribe(self) -> None:
        assert self.bus.js is not None
        js = self.bus.js
        stream = self.sub_spec.stream
        wanted = sorted(self.sub_spec.handlers)
        try:
            info = await js.consumer_info(stream, self.name)
        except NotFoundError:
            info = None
        if info is None:
            start = await self._start_of_lost_durable()
            where: dict[str, Any] = {"deliver_policy": DeliverPolicy.ALL}
            if start is not None:
                log.warning("consumer %s: its durable is gone; recreated from %s (events older than the retention "
                            "period may have been applied and forgotten)", self.name, start.isoformat())
                where = {"deliver_policy": DeliverPolicy.BY_START_TIME, "opt_start_time": start}
            await js.add_consumer(stream, self._config(self.name, wanted, metadata={META_HANDLED: json.dumps(wanted)},
                                                       **where))
        else:
            existing = sorted(info.config.filter_subjects or [info.config.filter_subject or ""])
            meta = dict(info.config.metadata or {})
            if existing != wanted or META_HANDLED not in meta:
                await self._change_subjects(info, existing, wanted, meta)
        async with self.db.transaction() as session:  # remembered for good (retention keeps it): see below
            await claim_events(session, self.db.dialect, self.name, [SUBSCRIBED_MARK], self.clock.now())
        self._psub = await js.pull_subscribe_bind(durable=self.name, stream=stream)

    async def _start_of_lost_durable(self) -> datetime | None:
        """Where a durable that has to be created starts: at the beginning of the stream for a new consumer; for
        one that existed (it applied events, and lost its durable: deleted, NATS store lost), not before the
        retention cutoff — older events' ids may have been pruned from processed_events and would apply twice.
        Anything newer is either remembered (skipped) or was never applied (applied now)."""
        async with self.db.transaction() as session:  # the mark of an earlier subscription, or an applied event
            existed = (await session.execute(select(ProcessedEvent.event_id)
                                             .where(ProcessedEvent.consumer == self.name).limit(1))).first()
        if existed is None:
            return None
        now = min(self.clock.now(), datetime.now(UTC))  # stream times are real; a test clock may run ahead
        return now - timedelta(days=self.retention_days)

    async def _change_subjects(self, info: Any, existing: list[str], wanted: list[str], meta: dict) -> None:
        """A new release handles other subjects: update the durable in place, keeping its position (NATS >=
        2.10), and deliver the new subjects' history through the companion durable.

        The durable's reported position (`delivered`) is not where it resumes: it has already skipped past the
        messages its old filter did not match. So the history goes up to the stream's last message (read before
        and again after the update); what the main durable also delivers is applied once (processed ids)."""
        js = self.bus.js
        stream = self.sub_spec.stream
        handled_ever = set(json.loads(meta.get(META_HANDLED, "[]"))) | {s for s in existing if s}
        dropped: dict[str, int] = json.loads(meta.get(META_DROPPED, "{}"))
        last = (await js.stream_info(stream)).state.last_seq
        history: dict[str, int] = {}  # subject -> deliver its messages after this stream sequence
        for subject in wanted:
            if subject in existing:
                continue
            if subject not in handled_ever:
                history[subject] = 0
            elif subject in dropped:
                history[subject] = dropped[subject]
            dropped.pop(subject, None)
        for subject in existing:
            if subject and subject not in wanted:
                # Its messages up to here were handled (or skipped on purpose) by the durable.
                dropped[subject] = info.delivered.stream_seq if info.delivered else 0
        if existing != wanted:
            log.info("consumer %s: subjects %s -> %s (history of %s up to stream sequence %d)",
                     self.name, existing, wanted, sorted(history), last)
        history = {s: after for s, after in history.items() if after < last}
        if history:
            await self._add_history(history, last)
        metadata = {**meta, META_HANDLED: json.dumps(sorted(handled_ever | set(wanted))),
                    META_DROPPED: json.dumps(dropped)}
        # Deliver policy and start are fixed at creation: repeat them as they are.
        extra: dict[str, Any] = {"deliver_policy": info.config.deliver_policy or DeliverPolicy.ALL}
        if info.config.opt_start_seq:
            extra["opt_start_seq"] = info.config.opt_start_seq
        if info.config.opt_start_time:
            extra["opt_start_time"] = info.config.opt_start_time
        await js.add_consumer(stream, self._config(self.name, wanted, metadata=metadata, **extra))
        if history:
            after_update = (await js.stream_info(stream)).state.last_seq
            if after_update > last:  # published meanwhile: the history takes those too
                await self._add_history(history, after_update, replace=False)

    async def _add_history(self, history: dict[str, int], until: int, replace: bool = True) -> None:
        js = self.bus.js
        stream = self.sub_spec.stream
        if replace:
            with suppress(NotFoundError):  # an unfinished earlier one: fold its subjects into the new one
                old = await js.consumer_info(stream, self.history_name)
                for subject, after in json.loads((old.config.metadata or {}).get(META_FROM, "{}")).items():
                    history[subject] = min(after, history.get(subject, after))
                await js.delete_consumer(stream, self.history_name)
        start = min(history.values()) + 1
        # replace=False updates the metadata of the one just created (same config otherwise).
        await js.add_consumer(stream, self._config(
            self.history_name, sorted(history), deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start,
            metadata={META_FROM: json.dumps(history), META_UNTIL: str(until)}))

    async def _deliver_history(self) -> None:
        """Apply the history of newly handled subjects (if a companion durable is there), then delete it."""
        js = self.bus.js
        stream = self.sub_spec.stream
        try:
            info = await js.consumer_info(stream, self.history_name)
        except NotFoundError:
            return
        meta = info.config.metadata or {}
        after: dict[str, int] = json.loads(meta.get(META_FROM, "{}"))
        until = int(meta.get(META_UNTIL, "0"))
        psub = await js.pull_subscribe_bind(durable=self.history_name, stream=stream)
        applied = 0
        try:
            while not self._stopping:
                try:
                    msgs = await psub.fetch(self.batch, timeout=self.fetch_timeout)
                except (TimeoutError, NatsTimeoutError):
                    self._raise_if_cancelled()
                    msgs = []
                ours = []
                for msg in msgs:
                    seq = msg.metadata.sequence.stream
                    if seq > until or seq <= after.get(msg.subject, 0):
                        await self._settle(msg, "ack")  # the main durable delivers it, or it is not history
                    else:
                        ours.append(msg)
                if ours:
                    await self.process(ours)
                    applied += len(ours)
                self.health.running()
                if len(msgs) < self.batch:
                    state = await js.consumer_info(stream, self.history_name)
                    if state.num_ack_pending == 0 and (state.num_pending == 0 or state.ack_floor.stream_seq >= until):
                        break
        finally:
            with suppress(Exception):
                await psub.unsubscribe()
        if not self._stopping:
            await js.delete_consumer(stream, self.history_name)
            log.info("consumer %s: history of %s delivered (%d events)", self.name, sorted(after), applied)

    async def lag(self) -> dict[str, int]:
        """Pending messages of the durable (JetStream consumer info), for readiness."""
        assert self.bus.js is not None
        info = await self.bus.js.consumer_info(self.sub_spec.stream, self.name, timeout=2)
        return {"pending": info.num_pending or 0, "ack_pending": info.num_ack_pending or 0,
                "redelivered": info.num_redelivered or 0}

    # ------------------------------------------------------------------ the loop

    async def run(self) -> None:
        await self.bus.ready.wait()
        await self._subscribe()
        await self._deliver_history()
        delay = 0.1
        while not self._stopping:
            try:
                msgs = await self._psub.fetch(self.batch, timeout=self.fetch_timeout)
            except (TimeoutError, NatsTimeoutError):
                self._raise_if_cancelled()
                self.health.running()
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # connection lost: nats-py reconnects, we fetch again
                self._raise_if_cancelled()
                if self.bus.nc is None or self.bus.nc.is_closed:
                    return  # drained or closed for good: nothing more will arrive
                if self.bus.is_connected:
                    await self._raise_if_durable_gone()
                if not self.health.failing:
                    log.warning("consumer %s: fetching from NATS failed (%s); retrying", self.name, describe(exc))
                self.health.retrying(f"NATS: {describe(exc)}")
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.1
            await self.process(msgs)
            self.health.running()

    async def _raise_if_durable_gone(self) -> None:
        """Fetching from a deleted durable fails forever: end the loop so the supervisor subscribes anew."""
        try:
            await self.bus.js.consumer_info(self.sub_spec.stream, self.name, timeout=2)
        except NotFoundError as exc:
            raise RuntimeError(f"the durable consumer {self.name} is gone; subscribing again") from exc
        except Exception:
            return  # cannot tell now: keep retrying the fetch

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

    # ------------------------------------------------------------------ applying messages

    async def process(self, msgs: list[Msg]) -> None:
        """Apply `msgs`, holding them through transient failures (see the module docstring)."""
        self._inflight = {id(m): m for m in msgs}
        heartbeat = asyncio.create_task(self._heartbeat())
        delay = 0.1
        try:
            while self._inflight:
                try:
                    await self._process_inflight()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if not is_transient(exc):
                        raise  # a fault of the consumer itself: the supervisor restarts it
                    if self._stopping:
                        return  # what is in hand is redelivered (after ack_wait) to whoever runs next
                    if not self.health.failing:
                        log.warning("consumer %s: %s; holding %d message(s) and retrying until it passes",
                                    self.name, describe(exc), len(self._inflight))
                    self.health.retrying(describe(exc))
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
        finally:
            heartbeat.cancel()
            self._inflight = {}

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.ack_wait / 3)
            for msg in list(self._inflight.values()):
                with suppress(Exception):
                    await msg.in_progress()

    async def _process_inflight(self) -> None:
        msgs = list(self._inflight.values())
        if len(msgs) > 1:
            try:
                await self._apply_batch(msgs)
            except Exception as exc:
                if is_transient(exc):
                    raise
                log.info("consumer %s: batch of %d failed (%s); retrying one by one", self.name, len(msgs), exc)
            else:
                for msg in msgs:
                    await self._settle(msg, "ack")
                return
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
        except Exception as exc:
            if is_transient(exc):
                raise
            await self._failed(msg, exc)
            return
        await self._settle(msg, "ack")

    async def _apply(self, session: AsyncSession, msg: Msg, evt: Event, record: bool = True) -> None:
        handler = self.sub_spec.handlers[msg.subject]
        # OpenTelemetry messaging conventions (issue 14): `process <subject>`, the durable as consumer group.
        attributes = messaging_attributes(msg.subject, evt.event_id, "process", consumer=self.name,
                                          deal_id=evt.deal_id)
        if evt.client_id:
            attributes["zabota.client_id"] = evt.client_id
        with continue_trace(msg.headers, f"process {msg.subject}", attributes=attributes):
            await handler(evt, session)
        if record:
            session.add(ProcessedEvent(consumer=self.name, event_id=evt.event_id, processed_at=self.clock.now()))

    async def _settle(self, msg: Msg, how: str, delay: float | None = None) -> None:
        """Ack, nak or term; a lost connection here is harmless (the message comes back and is skipped)."""
        self._inflight.pop(id(msg), None)
        key = _key(msg)
        if how != "nak":
            self._first_failure.pop(key, None)
        try:
            if how == "ack":
                await msg.ack()
            elif how == "nak":
                await msg.nak(delay=delay)
            else:
                await msg.term()
        except Exception as exc:
            log.debug("consumer %s: %s of a message failed: %s", self.name, how, exc)

    async def _failed(self, msg: Msg, exc: Exception) -> None:
        """The message failed for its own reason: try again later, or dead-letter it once the budget is spent."""
        deliveries = msg.metadata.num_delivered if msg.metadata else 1
        reason = f"{type(exc).__name__}: {exc}"
        now = self.clock.now()
        key = _key(msg)
        first = self._first_failure.setdefault(key, now)
        if len(self._first_failure) > 10_000:  # messages another replica finished: forget the oldest
            self._first_failure.pop(next(iter(self._first_failure)))
        spread = (now - first).total_seconds()
        if deliveries < self.max_deliver or spread < self.dead_letter_after:
            delay = self.retry_delay(deliveries)
            log.warning("consumer %s: %s failed (delivery %d/%d, again in %.1fs): %s",
                        self.name, msg.subject, deliveries, self.max_deliver, delay, reason)
            await self._settle(msg, "nak", delay)
            return
        # Writing the dead letter may meet an outage itself: that raises a transient error, and the message is
        # held and tried again; the row is an upsert, so it is still written once.
        await self._dead_letter(msg, deliveries, reason)
        log.error("consumer %s: %s dead-lettered after %d deliveries over %.0fs: %s",
                  self.name, msg.subject, deliveries, spread, reason)
        await self._settle(msg, "term")

    async def _dead_letter(self, msg: Msg, deliveries: int, reason: str) -> None:
        headers = dict(msg.headers or {})
        event_id = _event_id_of(msg)
        insert_fn = pg_insert if self.db.dialect == "postgresql" else sqlite_insert
        values = {"consumer": self.name, "subject": msg.subject, "event_id": event_id, "deliveries": deliveries,
                  "reason": reason[:4000], "payload": msg.data, "failed_at": self.clock.now()}
        stmt = insert_fn(DeadLetter.__table__).values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["consumer", "event_id"],
            set_={k: stmt.excluded[k] for k in ("subject", "deliveries", "reason", "payload", "failed_at")})
        async with self.db.transaction() as session:
            await session.execute(stmt)
        dl_headers = {k: v for k, v in headers.items() if k != "Nats-Msg-Id"}
        dl_headers.update({"Zabota-Original-Subject": msg.subject, "Zabota-Failure-Reason": reason[:1000],
                           "Zabota-Deliveries": str(deliveries), "Nats-Msg-Id": f"{self.name}:{event_id}"})
        await self.bus.publish_many([Outgoing(f"deadletter.{self.name}", msg.data, dl_headers)])


def _key(msg: Msg) -> tuple[str, int]:
    meta = msg.metadata
    return (meta.stream, meta.sequence.stream) if meta else ("", id(msg))


def _event_id_of(msg: Msg) -> str:
    """The event's own id (also for a replay, which has another message id); else the message's."""
    with suppress(Exception):
        event_id = msgspec.json.decode(msg.data).get("event_id")
        if isinstance(event_id, str) and event_id:
            return event_id[:64]
    headers = msg.headers or {}
    if headers.get("Nats-Msg-Id"):
        return headers["Nats-Msg-Id"][:64]
    meta = msg.metadata
    return f"{meta.stream}:{meta.sequence.stream}" if meta else "unknown"


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
