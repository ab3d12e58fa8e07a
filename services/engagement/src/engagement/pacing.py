"""The pace of a bot's sends (issue 13, EN-11; Telegram Bots FAQ in CHANNELS.md §3.5, VK §4.4), per process:
`Pacer` gives every call the earliest moment within the limits of its chat, its group and its bot, and holds a
chat or a bot back after a 429. Used by `engagement.pushing.deliver` (which re-exports both names)."""

from __future__ import annotations

import asyncio
import bisect
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PaceSettings:
    """The documented limits (Bots FAQ, CHANNELS.md §3.5; VK §4.4), in `unit`s of time: tests scale `unit` down
    and the stand-in Bot API enforces the same scaled limits. `margin` widens every spacing and window a little,
    because arrival at the platform jitters by some milliseconds against our clock."""

    chat_interval: float = 1.0     # "avoid sending more than one message per second" in a chat
    group_per_minute: int = 20     # "not able to send more than 20 messages per minute" in a group
    bot_per_second: int = 30       # "not able to broadcast more than about 30 messages per second"
    vk_per_second: int = 20        # API calls per second with a community token
    max_wait: float = 60.0         # 429 / flood waits inside one delivery before it is handed back as Retry
    max_in_flight: int = 50        # requests on the wire at once (below httpx's pool: no queue inside it)
    margin: float = 0.05
    unit: float = 1.0              # seconds per unit of the limits above (1 in production)


class Pacer:
    """Per chat ≤ 1 send call per `chat_interval`; per group ≤ `group_per_minute` messages in any minute; per bot
    ≤ `bot_per_second` messages in any second, spread evenly (1/30 s apart: a burst of 30 at once would reach the
    platform spread by its own queue and overlap the next second's); an album of n counts n against the windows
    and the bot's spacing, one call against the chat's; a chat or a whole bot paused after a 429 for its
    `retry_after`.

    A call reserves the earliest moment that keeps every limit, given the moments already reserved (in the past
    and in the future), and sleeps once until then: a thousand waiting pushes do not wake each other up. Kept per
    process (asyncio: a reservation has no await inside). `monotonic` and `sleep` are injectable for tests."""

    def __init__(self, settings: PaceSettings | None = None, *, monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep, remember: int = 10_000) -> None:
        self.settings = settings or PaceSettings()
        self.monotonic, self.sleep = monotonic, sleep
        self._chat_last: dict[tuple[str, str], float] = {}          # the latest reserved call per chat
        self._group_sent: dict[tuple[str, str], deque[float]] = {}  # reserved messages per group (ascending)
        self._bot_sent: dict[str, list[float]] = {}                 # reserved messages per bot (sorted)
        self._bot_busy: dict[str, tuple[list[float], list[float]]] = {}  # (starts, ends) of its calls' spacing
        self._paused: dict[tuple[str, str | None], float] = {}
        self._progress: OrderedDict[str, list[str]] = OrderedDict()
        self._remember = remember
        # When the channel answers slower than the pace, requests wait here rather than in httpx's pool, whose
        # every connection event scans all its waiting requests.
        self.in_flight = asyncio.Semaphore(self.settings.max_in_flight)

    def _span(self, units: float) -> float:
        return units * self.settings.unit * (1 + self.settings.margin)

    def _earliest(self, bot: str, chat: str | None, group: bool, messages: int, per_second: int | None) -> float:
        now, s = self.monotonic(), self.settings
        at = max(now, self._paused_until(bot, chat))
        if chat is not None and (bot, chat) in self._chat_last:
            at = max(at, self._chat_last[(bot, chat)] + self._span(s.chat_interval))
        if chat is not None and group and (bot, chat) in self._group_sent:
            at = _after_window(self._group_sent[(bot, chat)], at, self._span(60), s.group_per_minute, messages)
        limit = per_second or s.bot_per_second
        sent = self._bot_sent.get(bot, [])
        del sent[:bisect.bisect_right(sent, now - self._span(1))]   # forget what no window can hold any more
        starts, ends = self._bot_busy.get(bot, ([], []))
        gone = bisect.bisect_right(ends, now)
        del starts[:gone], ends[:gone]
        while True:   # both only move later: they meet
            spaced = _free_gap(starts, ends, at, self._span(1) / limit * min(messages, limit))
            at = _bot_slot(sent, spaced, self._span(1), limit, messages)
            if at == spaced:
                return at

    def wait_for(self, bot: str, chat: str | None, *, group: bool, messages: int = 1,
                 per_second: int | None = None) -> float:
        """Seconds until a call of `messages` messages to `chat` could go (0: now); reserves nothing."""
        return self._earliest(bot, chat, group, messages, per_second) - self.monotonic()

    def reserve(self, bot: str, chat: str | None, *, group: bool, messages: int = 1,
                per_second: int | None = None) -> float:
        """Reserve the earliest moment (monotonic) the call may go."""
        at = self._earliest(bot, chat, group, messages, per_second)
        if chat is not None:
            self._chat_last[(bot, chat)] = at
            if group:
                self._group_sent.setdefault((bot, chat), deque()).extend([at] * messages)
        sent = self._bot_sent.setdefault(bot, [])
        index = bisect.bisect_right(sent, at)
        sent[index:index] = [at] * messages
        starts, ends = self._bot_busy.setdefault(bot, ([], []))
        index = bisect.bisect_right(starts, at)
        starts.insert(index, at)
        ends.insert(index, at + self._span(1) / (per_second or self.settings.bot_per_second) * messages)
        return at

    async def acquire(self, bot: str, chat: str | None, *, group: bool, messages: int = 1,
                      per_second: int | None = None) -> None:
        while True:
            at = self.reserve(bot, chat, group=group, messages=messages, per_second=per_second)
            if (wait := at - self.monotonic()) > 0:
                await self.sleep(wait)
            if self._paused_until(bot, chat) <= at:
                return   # else a 429 paused the chat while we slept: take a later moment

    def pause(self, bot: str, chat: str | None, seconds: float) -> None:
        """After a 429: nothing more to `chat` (or, with None, from the bot) for `seconds`."""
        until = self.monotonic() + seconds
        self._paused[(bot, chat)] = max(until, self._paused.get((bot, chat), until))

    def _paused_until(self, bot: str, chat: str | None) -> float:
        return max(self._paused.get((bot, None), 0.0), self._paused.get((bot, chat), 0.0) if chat else 0.0)

    def progress(self, dedupe_key: str) -> list[str]:
        """The parts of a push already accepted by the channel (message ids, uploaded attachments)."""
        return list(self._progress.get(dedupe_key, ()))

    def keep(self, dedupe_key: str, parts: list[str]) -> None:
        self._progress[dedupe_key] = list(parts)
        self._progress.move_to_end(dedupe_key)
        while len(self._progress) > self._remember:
            self._progress.popitem(last=False)

    def forget(self, dedupe_key: str) -> None:
        self._progress.pop(dedupe_key, None)


def _after_window(sent: deque[float], at: float, window: float, limit: int, messages: int) -> float:
    """The earliest moment ≥ `at` when `messages` more fit under `limit` in the window ending there; `sent`
    is ascending and ≤ `at` (one chat's reservations only grow), so only that one window matters."""
    while sent and sent[0] <= at - window:
        sent.popleft()
    over = len(sent) + min(messages, limit) - limit
    return at if over <= 0 else max(at, sent[over - 1] + window)


def _free_gap(starts: list[float], ends: list[float], at: float, length: float) -> float:
    """The earliest moment ≥ `at` with [moment, moment + length) clear of the reserved intervals (disjoint,
    sorted)."""
    index = bisect.bisect_right(starts, at)
    if index > 0 and ends[index - 1] > at:
        at = ends[index - 1]
    while index < len(starts) and starts[index] < at + length:
        at = max(at, ends[index])
        index += 1
    return at


def _bot_slot(sent: list[float], at: float, window: float, limit: int, messages: int) -> float:
    """The earliest moment ≥ `at` where `messages` more keep every sliding window (y - window, y] holding `at`
    within `limit`; `sent` is sorted and may hold future reservations. A window that is full rules out every
    moment inside it, so the search jumps past it to the next moment a message leaves a window."""
    messages = min(messages, limit)
    while True:
        inside = sent[bisect.bisect_right(sent, at):bisect.bisect_left(sent, at + window)]
        full = [y for y in (at, *inside)
                if bisect.bisect_right(sent, y) - bisect.bisect_right(sent, y - window) + messages > limit]
        if not full:
            return at
        at = sent[bisect.bisect_right(sent, full[-1] - window)] + window
