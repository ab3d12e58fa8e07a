"""Background loops: one that sleeps between rounds and can be woken early (by a commit) or stopped,
and the supervisor that keeps every background loop of a service running (issue 7 §3)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)


class WakeableLoop:
    def __init__(self, poll_seconds: float) -> None:
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stopping

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def nap(self) -> None:
        """Sleep until woken or until the poll interval passes, whichever is first.

        The flag is cleared on waking, before the next round of work: a wake-up that arrives while that
        work runs stays set and cuts the next nap short, so no commit's wake-up is ever lost.
        """
        try:
            await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
        except TimeoutError:
            pass
        self._wake.clear()


# ------------------------------------------------------------------ supervision (issue 7 §3)

class LoopHealth:
    """What one background loop is doing, for /health/ready and the System status page.

    States: `starting` (not yet through its first round), `running`, `retrying` (alive, waiting out a
    transient failure such as the database being away: `error` says which), `restarting` (it crashed and
    the supervisor restarts it after a back-off), `stopped`. A loop is *failing* — and readiness answers
    503 naming it — while it is retrying or restarting.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.state = "starting"
        self.error: str | None = None
        self.restarts = 0
        self.since = time.time()

    def _set(self, state: str, error: str | None = None) -> None:
        if state != self.state:
            self.since = time.time()
        self.state = state
        self.error = error

    def running(self) -> None:
        """The loop did a round of work (or found none to do): it can run."""
        if self.state != "running":
            if self.state in ("retrying", "restarting"):
                log.warning("%s runs again", self.name)
            self._set("running")

    def retrying(self, error: str) -> None:
        self._set("retrying", error)

    @property
    def failing(self) -> bool:
        return self.state in ("retrying", "restarting")

    def view(self) -> dict[str, Any]:
        return {"state": self.state, "error": self.error, "restarts": self.restarts,
                "since": datetime.fromtimestamp(self.since, UTC).isoformat()}


class Supervisor:
    """Runs background loops and restarts any that ends with an unexpected error, with back-off.

    The first crash of a run of crashes is logged with its traceback; repeats of the same error are not
    logged again until the loop has run again, so a loop that cannot run for an hour writes one line,
    not thousands. A loop that returns while the process is not stopping is restarted too (it is not
    supposed to end). `once=True` supervises a task that is done when it returns (connecting to NATS).
    `stable_seconds` after a (re)start without a crash, a loop that does not report its own rounds
    counts as running.
    """

    def __init__(self, *, initial_backoff: float = 0.2, max_backoff: float = 10.0, stable_seconds: float = 5.0) -> None:
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.stable_seconds = stable_seconds
        self.loops: dict[str, LoopHealth] = {}
        self.tasks: list[asyncio.Task] = []
        self.stopping = False

    def start(self, name: str, factory: Callable[[], Awaitable[None]], *, health: LoopHealth | None = None,
              once: bool = False) -> LoopHealth:
        health = health or LoopHealth(name)
        health.name = name
        self.loops[name] = health
        self.tasks.append(asyncio.create_task(self._supervise(health, factory, once), name=f"supervised {name}"))
        return health

    def failing(self) -> list[str]:
        return [name for name, health in self.loops.items() if health.failing]

    async def _supervise(self, health: LoopHealth, factory: Callable[[], Awaitable[None]], once: bool) -> None:
        backoff = self.initial_backoff
        last_error: str | None = None
        while not self.stopping:
            started = time.monotonic()
            stable = asyncio.get_running_loop().call_later(self.stable_seconds, _mark_stable, health)
            try:
                await factory()
                error = None if (once or self.stopping) else "the loop ended"
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"[:1000]
                if error != last_error:
                    log.error("%s crashed; restarting in %.1fs", health.name, backoff, exc_info=exc)
                else:
                    log.debug("%s crashed again: %s", health.name, error)
            finally:
                stable.cancel()
            if error is None:
                if once:
                    health.running()
                else:
                    health._set("stopped")
                return
            if error == "the loop ended" and error != last_error:
                log.error("%s ended unexpectedly; restarting in %.1fs", health.name, backoff)
            if time.monotonic() - started > self.stable_seconds or health.state == "running":
                backoff = self.initial_backoff  # it ran for a while: a new incident, not the same one
            last_error = error
            health.restarts += 1
            health._set("restarting", error)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff)

    async def stop(self, timeout: float = 5.0) -> None:
        """Cancel what still runs (callers stop their loops gracefully first) and wait for it."""
        self.stopping = True
        await asyncio.sleep(0)
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, timeout)
        for health in self.loops.values():
            health._set("stopped")


def _mark_stable(health: LoopHealth) -> None:
    if health.state in ("starting", "restarting"):
        health.running()
