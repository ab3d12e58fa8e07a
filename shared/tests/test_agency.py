"""Issue 9, agency settings: the Kazakhstan holidays preset, the requisites checks, and the calendar a lead sets
reaching every service process through `clients.agency.calendar_changed.v1` (real nats-server)."""

from __future__ import annotations

import asyncio
from datetime import date, time
from types import SimpleNamespace

from shared.agency import check_bik, check_bin, check_iban, kz_holidays
from shared.bus import Bus, Outgoing
from shared.events import encode
from shared.events.clients import AgencyCalendarChanged
from shared.testing import eventually, make_settings

from shared import agency_calendar
from shared import messages as M


def test_kz_holidays_2026_with_the_weekend_carry_over() -> None:
    days = set(kz_holidays(2026))
    for d in (date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 7), date(2026, 3, 8), date(2026, 3, 21),
              date(2026, 3, 22), date(2026, 3, 23), date(2026, 5, 1), date(2026, 5, 7), date(2026, 5, 9),
              date(2026, 5, 27), date(2026, 7, 6), date(2026, 8, 30), date(2026, 10, 25), date(2026, 12, 16)):
        assert d in days, d
    # 8 March 2026 is a Sunday → Monday 9 March off; Nauryz 21-22 March (Sat, Sun) → 24 and 25 March (the 23rd
    # is itself a holiday); 9 May (Sat) → 11 May; 30 Aug (Sun) → 31 Aug; 25 Oct (Sun) → 26 Oct.
    for d in (date(2026, 3, 9), date(2026, 3, 24), date(2026, 3, 25), date(2026, 5, 11), date(2026, 8, 31),
              date(2026, 10, 26)):
        assert d in days, d
    assert date(2026, 1, 8) not in days            # 7 January is religious: no carry-over (it is a Wednesday anyway)
    assert date(2027, 1, 1) in set(kz_holidays(2027))


def test_requisites_checks_answer_with_codes() -> None:
    assert check_bin("180140000018") is None
    assert check_bin("18014000001") == M.BIN_LENGTH and check_bin("180140000019") == M.BIN_CHECKSUM
    assert check_iban("KZ86 125K ZT50 0410 0100") is None
    assert check_iban("KZ87125KZT5004100100") == M.IBAN_CHECKSUM and check_iban("DE89370400440532013000") == M.IBAN_FORMAT
    assert check_bik("caspkzka") is None and check_bik("CASP") == M.BIK_FORMAT


def test_apply_keeps_the_environment_for_empty_parts_and_ignores_older_versions() -> None:
    settings = make_settings("clients", database_url="sqlite+aiosqlite:///:memory:")
    assert agency_calendar.apply(settings, 2, hours="09:00-18:00", holidays="2026-03-09")
    assert settings.calendar.work_start == time(9) and settings.calendar.tz.key == "Asia/Almaty"
    assert date(2026, 3, 9) in settings.calendar.holidays
    assert not agency_calendar.apply(settings, 1, hours="11:00-12:00")      # an older message arriving late
    assert settings.calendar.work_start == time(9)
    assert agency_calendar.base_calendar(settings).work_start == time(10)


async def test_every_process_follows_the_calendar_change_and_a_restart_reads_the_last_one(nats_server) -> None:
    publisher = Bus(nats_server.url, "clients-test")
    await publisher.connect(retry_forever=False)

    async def publish(evt: AgencyCalendarChanged) -> None:
        await publisher.publish_many([Outgoing(evt.subject, encode(evt), {"Nats-Msg-Id": evt.event_id})])

    async def follower() -> tuple[SimpleNamespace, asyncio.Task, Bus]:
        bus = Bus(nats_server.url, "content-test")
        await bus.connect(retry_forever=False)
        runtime = SimpleNamespace(bus=bus, settings=make_settings("content",
                                                                  database_url="sqlite+aiosqlite:///:memory:"))
        return runtime, asyncio.create_task(agency_calendar.follow_calendar(runtime)), bus

    running, task, bus = await follower()
    try:
        await publish(AgencyCalendarChanged(version=1, working_hours="09:00-18:00", workdays="1-6"))

        async def applied() -> bool:
            if task.done():   # the loop ended: say why rather than time out
                raise AssertionError(f"follow_calendar ended: {task.exception()!r}")
            return running.settings.calendar.work_start == time(9) and 5 in running.settings.calendar.workdays
        await eventually(applied, timeout=15, message="the running process applied the new calendar")
        await publish(AgencyCalendarChanged(version=2, working_hours="08:00-17:00"))
        await eventually(lambda: _is(running, time(8)), timeout=15, message="the next version applied")
    finally:
        task.cancel()
        await bus.drain()
    # A process started after the change reads the newest message of the stream.
    started, task2, bus2 = await follower()
    try:
        await eventually(lambda: _is(started, time(8)), timeout=15, message="a restarted process has the calendar")
    finally:
        task2.cancel()
        await bus2.drain()
        await publisher.drain()


async def _is(runtime: SimpleNamespace, start: time) -> bool:
    return runtime.settings.calendar.work_start == start


async def test_a_process_starts_with_its_own_calendar_when_no_change_was_ever_published(nats_server) -> None:
    bus = Bus(nats_server.url, "payroll-test")
    await bus.connect(retry_forever=False)
    runtime = SimpleNamespace(bus=bus, settings=make_settings("payroll", database_url="sqlite+aiosqlite:///:memory:"))
    before = runtime.settings.calendar
    try:
        await agency_calendar._apply_last(runtime.settings, bus.js)      # no message is not an error
        assert runtime.settings.calendar is before
    finally:
        await bus.drain()
