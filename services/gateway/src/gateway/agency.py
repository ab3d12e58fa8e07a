"""The agency's settings as the gateway needs them (issue 9): the business calendar every page shows times
in, and the default language of new accounts and of the public pages.

They are owned by the clients service (effective-dated, audited: the Settings page writes them there). The
gateway has no bus, so it reads them from the clients API with its integration token: at start, every
`REFRESH_SECONDS`, and at once after the lead saves them here. The calendar is applied to this process the
same way the services apply `clients.agency.calendar_changed.v1` (shared/agency_calendar.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from gateway import i18n
from gateway.service_client import ServiceClient, ServiceError, ServiceUnavailable
from shared import agency_calendar

log = logging.getLogger(__name__)
REFRESH_SECONDS = 30.0


def apply(runtime: Any, values: dict[str, Any]) -> None:
    """Take the clients service's current settings values into this process."""
    parts = tuple(str(values.get(k) or "") for k in ("calendar_timezone", "calendar_hours", "calendar_workdays",
                                                     "calendar_holidays"))
    settings = runtime.settings
    base = agency_calendar.base_calendar(settings)
    if parts != runtime.state.get("agency_calendar_parts", ("", "", "", "")):
        version = settings.__dict__.get("_calendar_version", 0) + 1
        agency_calendar.apply(settings, version, *parts)
        if not any(parts):   # back to the environment's own calendar
            object.__setattr__(settings, "calendar", base)
        runtime.state["agency_calendar_parts"] = parts
    i18n.set_agency_default(str(values.get("default_language") or ""))


async def refresh(runtime: Any) -> bool:
    http = runtime.state.get("http")
    if http is None:
        return False
    try:
        current = await ServiceClient(http, runtime.settings, None).get("clients", "/settings")
    except (ServiceUnavailable, ServiceError) as exc:
        log.info("agency settings not refreshed: %s", exc)
        return False
    if not isinstance(current, dict) or not isinstance(current.get("values"), dict):
        return False
    apply(runtime, current["values"])
    return True


async def follow(runtime: Any) -> None:
    """The gateway's supervised loop: refresh the agency settings now and then."""
    while True:
        await refresh(runtime)
        await asyncio.sleep(REFRESH_SECONDS)
