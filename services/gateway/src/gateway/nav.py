"""The navigation: each item names a page route; it is shown only to the roles that route allows,
so the menu and the guards can never disagree."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Litestar

from gateway.i18n import N_
from gateway.roles import allowed_roles
from gateway.sessions import SignedIn


@dataclass(frozen=True)
class NavItem:
    route: str   # the route handler's `name`
    label: str   # msgid, translated in the template


NAV: list[NavItem] = [
    NavItem("dashboard", N_("Dashboard")),
    NavItem("my_tasks", N_("My tasks")),
    NavItem("my_pushes", N_("My pushes")),
    NavItem("pipeline", N_("Pipeline")),
    NavItem("clients", N_("Clients")),
    NavItem("leads", N_("Leads")),
    NavItem("funnel", N_("Funnel")),
    NavItem("inbox", N_("Inbox")),
    NavItem("inbox_templates", N_("Templates")),
    NavItem("inbox_channels", N_("Channels")),
    NavItem("content_calendar", N_("Content")),
    NavItem("cadence", N_("Cadence")),
    NavItem("check_rounds", N_("Check rounds")),
    NavItem("care_report", N_("Care report")),
    NavItem("care_settings", N_("Care settings")),
    NavItem("groups", N_("Groups")),
    NavItem("sop_rules", N_("SOP rules")),
    NavItem("sop_calendar", N_("Group calendar")),
    NavItem("push_tasks", N_("Push tasks")),
    NavItem("imports", N_("Import")),
    NavItem("monitoring", N_("Mentions")),
    NavItem("monitoring_sources", N_("Monitoring sources")),
    NavItem("payroll", N_("Payroll")),
    NavItem("payroll_rules", N_("Pay rules")),
    NavItem("staff_list", N_("Staff")),
    NavItem("settings", N_("Settings")),
    NavItem("status", N_("System status")),
    NavItem("events_docs", N_("Event catalogue")),
]


def visible_nav(app: Litestar, staff: SignedIn | None, current_path: str) -> list[dict[str, Any]]:
    if staff is None:
        return []
    items = []
    for item in NAV:
        index = app.get_handler_index_by_name(item.route)
        if index is None or staff.role not in allowed_roles(index["handler"].opt):
            continue
        href = index["paths"][0]
        current = current_path == href or (href != "/" and current_path.startswith(href + "/"))
        items.append({"href": href, "label": item.label, "current": current, "route": item.route})
    # Only the most specific match is current (/payroll/rules is "Pay rules", not also "Payroll").
    matches = [i for i in items if i["current"]]
    if len(matches) > 1:
        best = max(matches, key=lambda i: len(i["href"]))
        for i in matches:
            i["current"] = i is best
    return items
