"""The inbound processor in a process of its own (issue 11: webhook ingest ≥ 2,000 req/s with p99 ≤ 50 ms, and
webhook → visible p99 ≤ 1 s at 200 messages/s, on the same service).

Why: the set-based processor (engagement.inbound_batch) is CPU-bound — a batch of 200 messages is a few hundred
milliseconds of Python without a pause. In the web process it held the event loop that answers webhooks: on 2
cores ingest fell from ~2,300 to ~700 req/s with p99 350 ms (`bench/engagement_ingest.py`, 2026-12-02). Webhooks
are stored first and processed after (CHANNELS, issue 11), so processing may wait a moment; answering may not.

How (`python -m engagement` on PostgreSQL; `ENGAGEMENT_PROCESSOR=process`, the default there):
- each web worker runs, as its supervised loop "engagement inbound", a child `python -m
  engagement.processor_process` at a lower CPU priority (`ENGAGEMENT_PROCESSOR_NICE`, default 10): the operating
  system gives webhooks and pages the CPU first and the backlog what is left. The child ending is the loop
  failing: restarted with back-off and named by /health/ready, like any loop. A child whose parent died stops.
- wake-ups cross the process boundary as PostgreSQL notifications: a web process that stored deliveries sends
  `NOTIFY engagement_deliveries` (the child LISTENs and starts at once; its 1 s poll catches a lost one and the
  retries' back-off); the child's commits that wrote inbox changes send `NOTIFY engagement_changes`, which wakes
  the web processes' long polls (the live inbox) as their own commits do.
SQLite (one writer), `ENGAGEMENT_PROCESSOR=inline` and the tests' `create_app()`: the processor runs in the web
process as before.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from shared.clock import SystemClock
from shared.db import Database
from shared.settings import Settings
from shared.telemetry import instrument_engine, setup_tracing
from sqlalchemy import text

log = logging.getLogger(__name__)

DELIVERIES = "engagement_deliveries"
CHANGES = "engagement_changes"


def wanted(settings: Settings, environ: dict[str, str] | None = None) -> bool:
    """Whether the processor runs in a process of its own (see the module docstring)."""
    env = os.environ if environ is None else environ
    mode = env.get("ENGAGEMENT_PROCESSOR", "process")
    return mode == "process" and settings.database_url.startswith("postgresql")


class Notifier:
    """`wake()` sends `NOTIFY <channel>` from a task of its own; wake-ups while one is on its way are one."""

    def __init__(self, db: Database, channel: str) -> None:
        self.db, self.channel = db, channel
        self._task: asyncio.Task[None] | None = None
        self._again = False

    def wake(self) -> None:
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.get_running_loop().create_task(self._send())

    async def _send(self) -> None:
        self._again = True
        while self._again:
            self._again = False
            try:
                async with self.db.engine.connect() as conn:
                    await conn.execute(text("SELECT pg_notify(:channel, '')"), {"channel": self.channel})
                    await conn.commit()
            except Exception as exc:  # the other side polls anyway: a lost wake-up costs at most its poll
                log.debug("notify %s: %s", self.channel, exc)


class Listener:
    """LISTENs on one channel over a connection of its own and calls `callback` for each notification;
    reconnects when the connection is lost (the callers poll meanwhile)."""

    def __init__(self, url: str, channel: str, callback: Callable[[], None], retry_seconds: float = 1.0) -> None:
        self.url, self.channel, self.callback, self.retry_seconds = url, channel, callback, retry_seconds
        self._stopping = False

    async def run(self) -> None:
        import asyncpg

        dsn = self.url.replace("postgresql+asyncpg://", "postgresql://", 1)
        while not self._stopping:
            try:
                conn = await asyncpg.connect(dsn)
            except Exception as exc:
                log.debug("listen %s: %s", self.channel, exc)
                await asyncio.sleep(self.retry_seconds)
                continue
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _c, lost=lost: lost.set())
            try:
                await conn.add_listener(self.channel, lambda *_: self.callback())
                self.callback()   # anything stored before we listened
                while not self._stopping and not lost.is_set() and not conn.is_closed():
                    with suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), self.retry_seconds)
            except Exception as exc:
                log.debug("listen %s: %s", self.channel, exc)
            finally:
                with suppress(Exception):
                    await asyncio.wait_for(conn.close(), 2)

    def stop(self) -> None:
        self._stopping = True


async def run_child(settings: Settings) -> None:
    """The web process's supervised loop: the child processor; its ending is an error (restarted, named)."""
    env = {**os.environ, "ENGAGEMENT_DATABASE_URL": settings.database_url}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "engagement.processor_process", env=env)
    try:
        code = await proc.wait()
    except asyncio.CancelledError:   # the service stops: so does its processor (it finishes the batch in hand)
        await _end(proc)
        raise
    raise RuntimeError(f"the inbound processor process ended (exit code {code})")


async def _end(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is not None:
        return
    with suppress(ProcessLookupError):
        proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), 10)
    except TimeoutError:
        with suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


async def serve(settings: Settings) -> None:
    """The child: the delivery processor, woken by NOTIFY, until SIGTERM or its parent is gone."""
    from engagement import changes, quality
    from engagement.inbound import DeliveryProcessor

    quality.configure(settings.calendar.tz.key)
    provider = setup_tracing("engagement", settings.otlp_endpoint)   # its spans, as the web process's
    db = Database(settings.database_url)
    instrument_engine(db.engine)
    processor = DeliveryProcessor(db, SystemClock())
    changed = Notifier(db, CHANGES)
    db.on_commit(changes.CHANGED_FLAG, changed.wake)   # the web processes' live inbox
    listener = Listener(settings.database_url, DELIVERIES, processor.wake)
    loop = asyncio.get_running_loop()

    def stop(*_: Any) -> None:
        processor.stop()
        listener.stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    tasks = [loop.create_task(listener.run()), loop.create_task(_orphaned(stop))]
    try:
        await processor.run()
    finally:
        stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await db.dispose()
        provider.shutdown()   # the spans still batched go out


async def _orphaned(stop: Callable[[], None]) -> None:
    parent = os.getppid()
    while os.getppid() == parent:
        await asyncio.sleep(1)
    stop()


def main() -> None:
    from shared.telemetry import setup_logging

    setup_logging("engagement")
    with suppress(OSError):
        os.nice(int(os.environ.get("ENGAGEMENT_PROCESSOR_NICE", "10")))
    asyncio.run(serve(Settings.from_env("engagement")))


if __name__ == "__main__":
    main()
