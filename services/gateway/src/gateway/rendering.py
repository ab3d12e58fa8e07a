"""Jinja templates and the one way pages respond (DESIGN 7).

`page(request, "pages/x.html", context, block="content")` renders the whole page for a normal
request and only `block` of the same template for an htmx request, always with `Vary: HX-Request`
(so a cached fragment is never shown as a page).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

from babel.dates import format_date
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from litestar import Request, Response
from litestar.enums import MediaType
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect
from shared.calendar import BusinessCalendar

from gateway import i18n
from gateway.nav import visible_nav
from gateway.people import person
from gateway.roles import ROLES
from gateway.urls import link, safe_next  # noqa: F401  (safe_next: pages import it from here)

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
# The vendored file carries its version in its name; pages find it here instead of hard-coding it.
HTMX_JS = max(p.relative_to(STATIC_DIR).as_posix() for p in STATIC_DIR.glob("js/htmx-*.min.js"))

# htmx 2 swaps only 2xx by default; our forms answer 422 with their errors (429: sign-in throttled) and
# pages answer 403/404/503 with an explanation, which the user must see.
# Under the Content-Security-Policy (gateway.security_headers) htmx injects no <style> (its indicator
# rules are in app.css), evaluates no script (no hx-on, no js: values) and runs no <script> it swaps in.
HTMX_CONFIG = {
    "responseHandling": [
        {"code": "204", "swap": False},
        {"code": "[23]..", "swap": True},
        {"code": "(403|404|409|422|429|503)", "swap": True, "error": False},
        {"code": "[45]..", "swap": False, "error": True},
    ],
    "includeIndicatorStyles": False,
    "allowEval": False,
    "allowScriptTags": False,
}


def local_filter(calendar: BusinessCalendar | Any):
    """`{{ ts|local }}`: a UTC timestamp in the agency's time zone (CAL-1: every page shows local time).
    Given the process's Settings, it follows the calendar the lead sets (gateway/agency.py)."""

    def local(value: datetime | str | None, fmt: str = "%d.%m.%Y %H:%M") -> str:
        if isinstance(value, str):   # the services answer ISO-8601 strings
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                return value
        if value is None:
            return ""
        current = calendar if isinstance(calendar, BusinessCalendar) else calendar.calendar
        return current.local(value).strftime(fmt)

    return local


def month_name(month: str | date | None, *, in_text: bool = False) -> str:
    """"2026-11" -> "Ноябрь 2026" / "November 2026" / "2026年11月" in the request language (babel).
    `in_text`: inside a sentence, where Russian and Kazakh write month names in lower case ("за ноябрь 2026",
    "қараша 2026 жалақысы"); English keeps its capital and Chinese has none."""
    if not month:
        return ""
    if isinstance(month, str):
        try:
            month = date.fromisoformat(month[:7] + "-01")
        except ValueError:
            return month
    language = i18n.current_language()
    text = format_date(month, "y年M月" if language == "zh" else "LLLL y", locale=language)
    if in_text:
        return text[:1].lower() + text[1:] if language in ("ru", "kk") else text
    return text[:1].upper() + text[1:]


def month_in_text(month: str | date | None) -> str:
    return month_name(month, in_text=True)


def upfirst(text: str) -> str:
    """A sentence's first letter in upper case (a Kazakh sentence may begin with a month: "қараша 2026 жалақысы")."""
    return text[:1].upper() + text[1:]


def day(value: date | datetime | str | None) -> str:
    """A date alone (the service start, a period's end) as DD.MM.YYYY, like every other date."""
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value[:10])
        except ValueError:
            return value
    return value.strftime("%d.%m.%Y") if value else ""


def role_label(role: str) -> str:
    return i18n.gettext(ROLES.get(role, role))


def role_choices() -> list[tuple[str, str]]:
    return [(role, i18n.gettext(label)) for role, label in ROLES.items()]


def create_template_engine(calendar: BusinessCalendar | Any) -> JinjaTemplateEngine:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(("html",)),
        extensions=["jinja2.ext.i18n"],
        undefined=StrictUndefined,   # a typo in a template fails its test instead of rendering blank
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # Newstyle gettext: `_("Hello %(name)s", name=x)` formats and autoescapes.
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters["local"] = local_filter(calendar)
    from gateway import labels, ui

    env.filters["money"] = ui.money
    env.filters["link"] = link
    env.filters["month_name"] = month_name
    env.filters["month_in_text"] = month_in_text
    env.filters["upfirst"] = upfirst
    env.filters["day"] = day
    env.filters["person"] = person
    env.filters["percent"] = lambda v: "—" if v is None else f"{float(v) * 100:.1f}%".replace(".0%", "%")
    env.globals.update(labels.template_globals())
    env.globals.update(htmx_js=HTMX_JS, htmx_config=HTMX_CONFIG, role_label=role_label,
                       languages=i18n.LANGUAGES, role_choices=role_choices,
                       person=person)
    return JinjaTemplateEngine.from_environment(env)


def is_htmx(request: Request) -> bool:
    """An htmx request that wants a fragment (a boosted link or a history restore wants the page)."""
    headers = request.headers
    return (headers.get("hx-request") == "true" and headers.get("hx-boosted") != "true"
            and headers.get("hx-history-restore-request") != "true")


def base_context(request: Request) -> dict[str, Any]:
    web = request.state.web
    return {"request": request, "web": web, "staff": web.staff,
            "nav": visible_nav(request.app, web.staff, request.url.path)}


def render(request: Request, template_name: str, context: Mapping[str, Any], block: str | None = None) -> str:
    env: Environment = request.app.template_engine.engine  # type: ignore[union-attr]
    template = env.get_template(template_name)
    full_context = {**base_context(request), **context}
    if block is None:
        return template.render(full_context)
    if block not in template.blocks:
        raise LookupError(f"{template_name} has no block {block!r}")
    return "".join(template.blocks[block](template.new_context(full_context)))


def page(request: Request, template_name: str, context: Mapping[str, Any] | None = None, *,
         block: str = "content", status_code: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """The full page, or only `block` for htmx, from one template."""
    html = render(request, template_name, context or {}, block if is_htmx(request) else None)
    return Response(html, media_type=MediaType.HTML, status_code=status_code,
                    headers={"Vary": "HX-Request", **(headers or {})})


def redirect(request: Request, location: str) -> Response:
    """After a successful form: 303 to the next page; for htmx, HX-Redirect (htmx would swap a 303's body)."""
    if request.headers.get("hx-request") == "true":
        return Response(b"", status_code=200, headers={"HX-Redirect": location, "Vary": "HX-Request"})
    return Redirect(location, status_code=303, headers={"Vary": "HX-Request"})
