"""The agency's business calendar as the lead sets it (CAL-1, issue 9 "Agency settings"), in every process.

The clients service owns the agency's settings (effective-dated `rule_settings` rows, audited) and announces
each calendar change with `clients.agency.calendar_changed.v1`, which carries the whole calendar and a
growing `version`. Every service process that uses the bus follows it (`follow_calendar`, a supervised loop
started by shared.service): at start it reads the newest such message from the CLIENTS stream (so a restart
comes back with the lead's calendar, no table needed), then applies each newer one as it is published
(a plain NATS subscription: every replica gets every change, unlike a durable work queue), and re-reads
the newest one every `REFRESH_SECONDS` in case a message was missed while NATS was away. The gateway, which
has no bus, reads the same values from the clients API (gateway/agency.py).

Applying means replacing `settings.calendar` in place: the settings object is otherwise frozen, but every
deadline computed after the change must see the new calendar, and the object is shared by reference (the
request contexts, the scheduler, the consumers' handlers). Deadlines already computed keep their due times.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from nats.errors import Error as NatsError

from shared.calendar import BusinessCalendar, _parse_holidays, _parse_hours, _parse_tz, _parse_workdays
from shared.settings import Settings

log = logging.getLogger(__name__)

SUBJECT = "clients.agency.calendar_changed.v1"
REFRESH_SECONDS = 60.0
RETRY_SECONDS = 1.0


def build(base: BusinessCalendar, tz: str = "", hours: str = "", workdays: str = "",
          holidays: str = "") -> BusinessCalendar:
    """The lead's calendar over the process's own (environment) one: an empty part keeps the base's."""
    start, end = _parse_hours(hours) if hours else (base.work_start, base.work_end)
    return BusinessCalendar(tz=_parse_tz(tz) if tz else base.tz, work_start=start, work_end=end,
                            workdays=_parse_workdays(workdays) if workdays else base.workdays,
                            holidays=_parse_holidays(holidays) if holidays else base.holidays)


def base_calendar(settings: Settings) -> BusinessCalendar:
    """The calendar the process started with (its AGENCY_* environment)."""
    return settings.__dict__.get("_base_calendar") or settings.calendar


def apply(settings: Settings, version: int, tz: str = "", hours: str = "", workdays: str = "",
          holidays: str = "") -> bool:
    """Make the lead's calendar `version` the process's calendar, unless a newer one is already applied.
    A calendar that does not parse (should never be published) is logged and ignored."""
    current = settings.__dict__.get("_calendar_version", -1)
    if version <= current:
        return False
    base = base_calendar(settings)
    try:
        calendar = build(base, tz, hours, workdays, holidays)
    except ValueError as exc:
        log.error("agency calendar version %s ignored: %s", version, exc)
        return False
    object.__setattr__(settings, "_base_calendar", base)
    object.__setattr__(settings, "_calendar_version", version)
    object.__setattr__(settings, "calendar", calendar)
    log.info("agency calendar version %s applied", version)
    return True


def apply_event(settings: Settings, evt: Any) -> bool:
    return apply(settings, evt.version, evt.timezone, evt.working_hours, evt.workdays, evt.holidays)


async def _apply_last(settings: Settings, js: Any) -> None:
    from nats.js.errors import NotFoundError

    from shared.events import decode

    try:
        msg = await js.get_last_msg("CLIENTS", SUBJECT)
    except NotFoundError:
        return
    apply_event(settings, decode(SUBJECT, msg.data))


async def follow_calendar(runtime: Any) -> None:
    """The supervised loop of every service with a bus (see the module docstring)."""
    from shared.events import decode

    bus = runtime.bus
    while bus.js is None or bus.nc is None or not bus.nc.is_connected:
        await asyncio.sleep(0.2)

    async def on_message(msg: Any) -> None:
        try:
            apply_event(runtime.settings, decode(SUBJECT, msg.data))
        except Exception:   # a malformed message must not stop the subscription
            log.exception("agency calendar message ignored")

    sub = await bus.nc.subscribe(SUBJECT, cb=on_message)
    # The server has the subscription before the stream is read: a change published in between is either
    # already in the stream (read below) or delivered to it — never neither until the next refresh.
    await bus.nc.flush()
    reads = 0
    try:
        while True:
            try:
                await _apply_last(runtime.settings, bus.js)
            except (NatsError, TimeoutError) as exc:   # NATS slow or away: asked again soon, not in a minute
                log.info("agency calendar not read: %s", exc)
                await asyncio.sleep(RETRY_SECONDS)
                continue
            reads += 1
            # Read once more a moment after starting: a change the server was still storing while we
            # subscribed is not left for a minute.
            await asyncio.sleep(RETRY_SECONDS if reads == 1 else REFRESH_SECONDS)
    finally:
        await sub.unsubscribe()
