"""A background loop that sleeps between rounds and can be woken early (by a commit) or stopped."""

from __future__ import annotations

import asyncio


class WakeableLoop:
    def __init__(self, poll_seconds: float) -> None:
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        self._wake.set()

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
