"""Benchmark: bot auto-send of group SOP pushes (issue 13, EN-11) paced at Telegram's real limits.

    uv run --no-sync python bench/group_autosend.py                      # 1,000 pushes to 200 groups, one bot
    uv run --no-sync python bench/group_autosend.py --pushes 200 --groups 40 --albums 10

Method: the local stand-in Bot API (services/engagement/tests/botapi.py, uvicorn on loopback) enforces the
documented limits on real time — per chat 1 call/s, per group 20 messages/min, per bot 30 messages/s — and answers
429 with `retry_after` beyond them. N pushes (round-robin over the groups, text; with --albums every k-th push is a
3-photo album, 3 messages) are handed to `engagement.pushing.deliver` all at once, through one `Pacer` with the
real limits and one httpx client with the service's SecretPathTransport, as the push loop would; a push handed back
as `Retry` is retried after its `after` (the push loop's part). Prints the wall time, the achieved rate, the
429s the server answered (each a violation attempt, waited out), unhandled 429s (a push not delivered or an error
escaping: must be 0), messages accepted in violation (recomputed from the server's arrival log: must be 0), that
every push arrived exactly once, and the theoretical floor of the limits.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "services" / "engagement" / "tests"))

from botapi import TOKEN, BotApi  # noqa: E402
from engagement.channels import Retry  # noqa: E402
from engagement.pushing import Pacer, PaceSettings, PushContent, PushFile, deliver  # noqa: E402
from engagement.sender import SecretPathTransport  # noqa: E402

PHOTO = PushFile("image", "card.jpg", "image/jpeg", b"\xff\xd8\xff" + b"0" * 2048)


def floor_seconds(per_chat: list[int], per_chat_messages: list[int], total_messages: int) -> dict[str, float]:
    """The least time the limits allow (first send at 0): the bot's 30 messages a second, a chat's calls one a
    second apart, a group's 20 messages a minute (sliding windows, as Telegram and the stand-in count them)."""
    return {
        "bot 30 msg/s": (math.ceil(total_messages / 30) - 1) * 1.0,
        "chat 1 call/s": (max(per_chat) - 1) * 1.0,
        "group 20 msg/min": (math.ceil(max(per_chat_messages) / 20) - 1) * 60.0,
    }


async def run(pushes: int, groups: int, albums: int, unit: float, margin: float) -> int:
    bot = BotApi(unit=unit).start()
    pacer = Pacer(PaceSettings(unit=unit, margin=margin))
    chats = [f"-100{5_000_000_000 + g}" for g in range(groups)]
    contents = {n: PushContent(f"SOP push {n}: 知识卡片 / карточка знаний", files=(PHOTO,) * 3)
                if albums and n % albums == 0 else PushContent(f"SOP push {n}: 知识卡片 / карточка знаний")
                for n in range(pushes)}
    outcome: Counter[str] = Counter()

    async def push(n: int, http: httpx.AsyncClient) -> None:
        for _ in range(50):
            try:
                await deliver(http, pacer, kind="telegram", base_url=bot.url, config={},
                              secrets={"bot_token": TOKEN}, chat_id=chats[n % groups], is_group=True,
                              content=contents[n], dedupe_key=f"push-{n}")
                outcome["sent"] += 1
                return
            except Retry as exc:   # handed back: the push loop retries it later
                outcome["retry_429" if "Too Many Requests" in exc.reason else f"retry_other {exc.reason}"] += 1
                await asyncio.sleep(exc.after or unit)
            except Exception as exc:
                outcome[f"error {type(exc).__name__}: {exc}"] += 1
                return
        outcome["gave up"] += 1

    try:
        async with httpx.AsyncClient(transport=SecretPathTransport(), timeout=30) as http:
            started = time.monotonic()
            await asyncio.gather(*(push(n, http) for n in range(pushes)))
            wall = time.monotonic() - started
    finally:
        bot.stop()

    accepted = bot.accepted
    messages = sum(a.messages for a in accepted)
    span = max(a.at for a in accepted) - min(a.at for a in accepted) if accepted else 0.0
    per_push = Counter((a.text or a.caption or "").split(":")[0] for a in accepted)
    per_chat = Counter(a.chat_id for a in accepted)
    per_chat_messages = Counter()
    for a in accepted:
        per_chat_messages[a.chat_id] += a.messages
    floors = floor_seconds(list(per_chat.values()), list(per_chat_messages.values()), messages)
    floor = max(floors.values()) * unit
    rejected_429 = len(bot.rejected)
    unhandled = pushes - outcome["sent"]
    violations = bot.violations()
    exactly_once = len(per_push) == pushes and set(per_push.values()) == {1}

    print(f"pushes {pushes} to {groups} groups through one bot ({messages} messages, "
          f"{sum(1 for c in contents.values() if c.files)} of them albums of 3), limits × {unit:g} s, "
          f"pacer margin {margin:.0%}")
    print(f"wall time           {wall:8.2f} s   (first to last accepted message {span:.2f} s)")
    print(f"achieved rate       {messages / wall:8.2f} messages/s   ({pushes / wall:.2f} pushes/s)")
    print(f"theoretical floor   {floor:8.2f} s   = max of " +
          ", ".join(f"{k}: {v * unit:.1f} s" for k, v in floors.items()) +
          f"   → {span / floor * 100 if floor else 0:.0f}% of the floor span")
    print(f"   (read as even spacing — 20/min = one per 3 s per group — the group floor would be "
          f"{(max(per_chat.values()) - 1) * 3 * unit:.0f} s; the bot's 30/s is the binding limit either way)")
    print(f"429 answered        {rejected_429:8d}   (by limit: {dict(Counter(r['limit'] for r in bot.rejected))};"
          f" handed back as Retry: {outcome['retry_429']})")
    others = {k.removeprefix("retry_other "): v for k, v in outcome.items() if k.startswith("retry_other")}
    if others:
        print(f"other Retry         {others}   (handed back, retried: not 429s)")
    print(f"unhandled 429       {unhandled:8d}   (must be 0)")
    print(f"violations          {violations:8d}   (messages accepted beyond a limit, recomputed; must be 0)")
    print(f"exactly once        {'yes' if exactly_once else 'NO'}")
    errors = {k: v for k, v in outcome.items() if k.startswith("error") or k == "gave up"}
    if errors:
        print(f"errors              {errors}")
    return 0 if unhandled == 0 and violations == 0 and exactly_once else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pushes", type=int, default=1000)
    parser.add_argument("--groups", type=int, default=200)
    parser.add_argument("--albums", type=int, default=0, help="every k-th push is a 3-photo album (0: none)")
    parser.add_argument("--unit", type=float, default=1.0, help="seconds per limit second (1 = the real limits)")
    parser.add_argument("--margin", type=float, default=PaceSettings().margin,
                        help="the pacer's widening of every spacing and window (default: the service's)")
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return asyncio.run(run(args.pushes, args.groups, args.albums, args.unit, args.margin))


if __name__ == "__main__":
    sys.exit(main())
