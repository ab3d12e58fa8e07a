"""Stored XSS: a corpus written through every way in, checked on every page that shows it (issue 8; §5).

Ways in today: the clients API as an integration (payments, leads), the payment webhook signed with
`X-Zabota-Signature`, the amoCRM CSV import (uploaded on the gateway's import page), the deal card's
client edit form, the client's public questionnaire, the leads form, and a deadline waiver's reason (it
reaches the payroll statement through NATS, as the note of a closed month's reversal). Pages: the deal
card, the board, everyone's tasks, the leads list and the lead card, the public questionnaire, the import
progress, the printable payment details (CL-12), the payroll statement (screen and print).

Every page is parsed with an HTML parser (html.parser, as a browser tokenises it) and must hold nothing
executable: no injected element (a canary tag), no event-handler or `hx-*` attribute carrying a payload,
no script or style body carrying one, no `javascript:`/`vbscript:`/`data:text/html` URL in any link, and
template syntax shown as typed, not evaluated. A payload refused at the door (4xx) counts as refused.
The inbox and plan comments join the ways in when they exist."""

from __future__ import annotations

import csv
import io
import json
import re
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import httpx

from .figures import record
from .identity import staff_headers, webhook_headers
from .stack import IMPORT_HEADER, Stack, csrf_of, payment_body

# {m} is the payload's own marker: it names the payload in the findings and finds it on the page.
TEXT_PAYLOADS = [
    "<script>{m}()</script>",
    "<img src=x onerror={m}()>",
    '"><svg onload={m}()>',
    "'><xss-canary id={m}></xss-canary>",
    '<a href="javascript:{m}()">link</a>',
    '<div hx-get="/{m}" hx-trigger="load">x</div>',
    '<b hx-on:click="{m}()" hx-vals=\'{{"a":1}}\'>x</b>',
    "{m}{{{{7*7}}}}{m}",
    "{m}${{7*7}}#{{7*7}}{m}",
    '<iframe srcdoc="<script>{m}()</script>"></iframe>',
    "</textarea></title><script>{m}()</script>",
    "<style>@import 'javascript:{m}()';</style>",
    '<math><mtext><table><mglyph><style><img src=x onerror={m}()>',
    "{{% if 1 %}}{m}-evaluated{{% endif %}}",
]
URL_PAYLOADS = [
    "javascript:{m}()",
    "JaVaScRiPt:{m}()",
    " javascript:{m}()",
    "java\tscript:{m}()",
    "data:text/html,<script>{m}()</script>",
    "vbscript:{m}()",
    "javascript://instagram.com/%0a{m}()",
]
URL_ATTRS = {"href", "src", "action", "formaction", "xlink:href", "data", "poster", "background", "hx-get",
             "hx-post", "hx-put", "hx-patch", "hx-delete"}
BAD_SCHEMES = ("javascript:", "vbscript:", "data:text/html")


# The ways in, by the letter in their markers: a = API, w = webhook, c = CSV import, e = card edit form,
# q = questionnaire, l = leads form, i = leads API, v = waiver reason.
WAYS = "awceqliv"


def marker(way: str, n: int) -> str:
    return f"zx{way}{n:02d}q"


class Scanner(HTMLParser):
    """Finds what a browser would run: injected elements, handlers, scripts, dangerous URLs."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.findings: list[str] = []
        self._in: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "xss-canary":
            self.findings.append(f"injected element <{tag} {attrs}>")
        for name, value in attrs:
            value = value or ""
            if "zx" in name:
                self.findings.append(f"injected attribute name {name!r} on <{tag}>")
            if (name.startswith("on") or name.startswith(("hx-", "data-hx-")) or name == "srcdoc") and "zx" in value:
                self.findings.append(f"<{tag} {name}={value!r}>")
            compact = re.sub(r"[\x00-\x20]", "", value).lower()
            if name in URL_ATTRS and compact.startswith(BAD_SCHEMES):
                self.findings.append(f"<{tag} {name}={value!r}>")
        if tag in ("script", "style"):
            self._in.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self._in and self._in[-1] == tag:
            self._in.pop()

    def handle_data(self, data: str) -> None:
        if self._in and "zx" in data:
            self.findings.append(f"<{self._in[-1]}> carrying {data.strip()[:80]!r}")


def executable(html: str) -> list[str]:
    scanner = Scanner()
    scanner.feed(html)
    scanner.close()
    text = re.sub(r"\s+", "", html)
    # Shown as typed, `{% if 1 %}zx…q-evaluated` keeps its tag; evaluated, the tag is gone.
    scanner.findings += [f"template evaluated: {m}" for m in re.findall(r"zx\w+?q49zx\w+?q|(?<!%})zx\w+?q-evaluated",
                                                                        text)]
    return scanner.findings


class Checker:
    """Counts what was tried and keeps every finding with the way in and the page."""

    def __init__(self) -> None:
        self.tried = self.inert = self.refused_at_entry = self.shown = 0
        self.findings: list[str] = []

    def entry(self, way: str, response: httpx.Response, payload: str) -> bool:
        """True if the payload was stored; a 4xx means it was refused at the door."""
        assert response.status_code < 500, (way, response.status_code, response.text[:300])
        if 400 <= response.status_code < 500:
            self.tried += 1
            self.refused_at_entry += 1
            return False
        return True

    def page(self, way: str, page: str, response: httpx.Response, markers: Iterable[str]) -> None:
        assert response.status_code < 500, (way, page, response.status_code)
        markers = list(markers)
        self.tried += 1
        self.shown += any(m in response.text for m in markers)
        found = [f for f in executable(response.text) if any(m in f for m in markers) or "zx" not in f
                 or not markers]
        if found:
            self.findings.append(f"{way} -> {page}: {found[:3]}")
        else:
            self.inert += 1


def deals_named(stack: Stack, needle: str) -> list[dict]:
    found, offset = [], 0
    while True:
        page = httpx.get(f"{stack.urls['clients']}/api/clients/deals", params={"limit": 200, "offset": offset},
                         headers={"Authorization": "Bearer " + stack_integration_token()}, timeout=30).json()
        found += [d for d in page if needle in (d.get("client_name") or "")]
        if len(page) < 200:
            return found
        offset += 200


def wait_for(probe, timeout: float):
    """Poll `probe` until it returns something truthy (a bound on waiting for NATS and timers, not a sleep
    the result depends on)."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.3)


def month_of(ts: str) -> str:
    return datetime.fromisoformat(ts).astimezone(ZoneInfo("Asia/Almaty")).strftime("%Y-%m")


def following_months(month: str) -> list[str]:
    """The months after `month` up to the current one (agency time)."""
    year, mon = map(int, month.split("-"))
    current = datetime.now(UTC).astimezone(ZoneInfo("Asia/Almaty")).strftime("%Y-%m")
    found = []
    while f"{year:04d}-{mon:02d}" < current:
        year, mon = (year + 1, 1) if mon == 12 else (year, mon + 1)
        found.append(f"{year:04d}-{mon:02d}")
    return found


def stack_integration_token() -> str:
    from .identity import INTEGRATION_TOKEN

    return INTEGRATION_TOKEN


def test_issue8_xss_corpus_through_every_way_in_is_inert_on_every_page(stack: Stack) -> None:
    check = Checker()
    lead = stack.browser("lead")
    token = stack.csrf(lead)
    hx = {"HX-Request": "true", "X-CSRF-Token": token}
    deals: dict[str, list[str]] = {}       # way -> deal ids to look at
    two_days_ago = datetime.now(UTC) - timedelta(days=2)

    # 1. API (integration) and 2. the signed payment webhook: the payload in the client card's text
    #    fields, or a dangerous URL in the Instagram field.
    for way, signed in (("a", False), ("w", True)):
        deals[way] = []
        for n, template in enumerate(TEXT_PAYLOADS + URL_PAYLOADS):
            m = marker(way, n)
            is_url = n >= len(TEXT_PAYLOADS)
            payload = template.format(m=m)
            client = ({"instagram": payload, "full_name": f"Url {m}"} if is_url else
                      {"full_name": payload, "notes": payload, "product": payload})
            body = payment_body(f"xss-{way}-{n}-{uuid.uuid4().hex[:6]}", "manager1", client=client,
                                paid_at=two_days_ago)
            raw = json.dumps(body).encode()
            headers = webhook_headers(raw) if signed else {"Authorization": f"Bearer {stack_integration_token()}"}
            response = httpx.post(f"{stack.urls['clients']}/api/clients/payments", content=raw,
                                  headers={**headers, "Content-Type": "application/json"}, timeout=30)
            if check.entry(way, response, payload):
                deals[way].append(response.json()["id"])

    # 3. The amoCRM CSV import, uploaded by the lead on the import page.
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\n")
    for n, template in enumerate(TEXT_PAYLOADS + URL_PAYLOADS):
        m = marker("c", n)
        payload = template.format(m=m)
        is_url = n >= len(TEXT_PAYLOADS)
        writer.writerow([f"77{n:03d}{uuid.uuid4().int % 10**6}", payload, "60000", "manager1", "Оплачено",
                         "01.03.2026 10:00", "01.03.2026 10:05", f"Url {m}" if is_url else payload,
                         f"+770100{n:05d}", "", payload if is_url else "", "Ведение аккаунта", "Физ. лицо",
                         "", "", "", "", ""])
    upload = lead.post("/imports", data={"_csrf": token},
                       files={"file": ("amocrm.csv", (IMPORT_HEADER + out.getvalue()).encode(), "text/csv")})
    assert upload.status_code in (200, 303), upload.text[:300]
    job_id = upload.headers["location"].rsplit("/", 1)[1]
    deadline = time.monotonic() + 90
    while True:
        job = stack.api("clients", "GET", f"/imports/{job_id}")
        if job["status"] == "done" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert job["status"] == "done", job
    check.page("csv import", "import progress", lead.get(f"/imports/{job_id}"), [marker("c", n) for n in range(30)])
    check.tried += len(job.get("errors", []))   # CSV rows refused at the door: tried and refused
    check.refused_at_entry += len(job.get("errors", []))
    deals["c"] = [d["id"] for d in deals_named(stack, "zxc")]

    # 4. The client card's edit form on the deal card (lead), on a deal of its own.
    edited = stack.api("clients", "POST", "/payments", json=payment_body(f"xss-e-{uuid.uuid4().hex[:6]}", "manager1",
                                                                        name="Card Edit Target"))["id"]
    for n, template in enumerate(TEXT_PAYLOADS + URL_PAYLOADS):
        m = marker("e", n)
        payload = template.format(m=m)
        is_url = n >= len(TEXT_PAYLOADS)
        form = {"_csrf": token, "full_name": f"Url {m}" if is_url else payload, "phone": "+77010004444",
                "instagram": payload if is_url else "https://instagram.com/ok", "notes": "" if is_url else payload}
        response = lead.post(f"/deals/{edited}/client", data=form, headers=hx)
        if response.status_code == 422:
            check.tried += 1
            check.refused_at_entry += 1
        else:
            check.page("card edit form", "deal card (htmx answer)", response, [m])
        check.page("card edit form", "deal card", lead.get(f"/deals/{edited}"), [m])

    # 5. The public questionnaire (anonymous, on the signed link): answers shown on the deal card; the
    #    client's name (an API payload) shown on the questionnaire page.
    for n, deal_id in enumerate(deals["a"][: len(TEXT_PAYLOADS)]):
        m = marker("q", n)
        payload = TEXT_PAYLOADS[n].format(m=m)
        link = stack.api("clients", "POST", f"/deals/{deal_id}/questionnaire-link")
        visitor = httpx.Client(base_url=stack.gateway, timeout=30, follow_redirects=False)
        form_page = visitor.get(f"/q/{link['token']}")
        check.page("api (client name)", "public questionnaire", form_page, [marker("a", n)])
        sent = visitor.post(f"/q/{link['token']}", data={"_csrf": csrf_of(form_page.text), "business": payload,
                                                         "audience": payload, "goals": payload, "notes": payload})
        if check.entry("questionnaire", sent, payload):
            check.page("questionnaire", "questionnaire thanks page", sent, [m, marker("a", n)])
        visitor.close()

    # 6. The leads form (lead) and leads from the API (integration).
    leads: list[tuple[str, str]] = []
    for n, template in enumerate(TEXT_PAYLOADS + URL_PAYLOADS):
        is_url = n >= len(TEXT_PAYLOADS)
        for way in ("l", "i"):
            m = marker(way, n)
            payload = template.format(m=m)
            fields = {"full_name": f"Url {m}" if is_url else payload, "phone": f"+7701005{n:04d}",
                      "instagram": payload if is_url else "", "notes": "" if is_url else payload,
                      "source": "" if is_url else payload, "product": "" if is_url else payload}
            if way == "l":
                response = lead.post("/leads", data={"_csrf": token, **fields})
                if check.entry("leads form", response, payload) and response.status_code == 303:
                    leads.append((m, response.headers["location"]))
            else:
                response = httpx.post(f"{stack.urls['clients']}/api/clients/leads",
                                      json={k: v or None for k, v in fields.items()},
                                      headers={"Authorization": f"Bearer {stack_integration_token()}"}, timeout=30)
                if check.entry("leads api", response, payload):
                    leads.append((m, f"/leads/{response.json()['id']}"))
    for m, path in leads:
        check.page("leads", "lead card", lead.get(path), [m])
        check.page("leads", "leads list", lead.get("/leads", params={"q": m}), [m])

    # 7. A deadline waiver's reason: on the deal card's timeline, and on the payroll statement. A waiver
    #    voids the breach's fine; when the breach's month is closed, the reversal is a line of the next open
    #    month whose note carries the reason (PAY-8; clients -> NATS -> payroll).
    forty_days_ago = datetime.now(UTC) - timedelta(days=40)
    breaches: list[tuple[str, dict]] = []
    for n in range(len(TEXT_PAYLOADS)):
        body = payment_body(f"xss-v-{n}-{uuid.uuid4().hex[:6]}", "manager1", name=f"Waiver {marker('v', n)}",
                            paid_at=forty_days_ago)
        deal_id = stack.api("clients", "POST", "/payments", json=body)["id"]
        breached = wait_for(lambda deal_id=deal_id: [d for d in stack.api("clients", "GET", f"/deals/{deal_id}")
                                                     ["deadlines"] if d["state"] == "breached"], 30)
        assert breached, f"the first call of {deal_id}, due forty days ago, was never breached"
        breaches.append((deal_id, breached[0]))
    months = sorted({month_of(d["due_at"]) for _deal, d in breaches})
    for month in months:    # payroll has every breach's line before its month is closed
        wanted = {d["id"] for _deal, d in breaches if month_of(d["due_at"]) == month}
        assert wait_for(lambda month=month, wanted=wanted: wanted <= {
            ln.get("deadline_id") for ln in stack.api("payroll", "GET", "/statements/manager1",
                                                      params={"month": month, "page_size": 5000})["lines"]}, 60)
        stack.api("payroll", "POST", f"/months/{month}/close", headers=staff_headers("lead", "lead", "payroll"),
                  expect=(200, 409))
    waived: list[str] = []
    for n, (deal_id, deadline) in enumerate(breaches):
        m = marker("v", n)
        payload = TEXT_PAYLOADS[n].format(m=m)
        response = lead.post(f"/deals/{deal_id}/deadlines/{deadline['id']}/waive",
                             data={"_csrf": token, "reason": payload}, headers=hx)
        if check.entry("waiver reason", response, payload):
            waived.append(m)
            check.page("waiver reason", "deal card", lead.get(f"/deals/{deal_id}"), [m])

    # 8. The printable payment details (CL-12), rendered by the clients service from the client card: the
    #    webhook's deals are launched and their client continues.
    today = datetime.now(UTC).astimezone(ZoneInfo("Asia/Almaty")).date().isoformat()
    documents = []
    for n, deal_id in enumerate(deals["w"][: len(TEXT_PAYLOADS)]):
        stack.api("clients", "POST", f"/deals/{deal_id}/stage", json={"stage": "contacted"})
        stack.api("clients", "POST", f"/deals/{deal_id}/stage", json={
            "stage": "project_launched", "service_start": today, "instagram_login": "x", "instagram_password": "y"})
        stack.api("clients", "POST", f"/deals/{deal_id}/renewal-answer", json={"continues": True})
        documents.append((marker("w", n), deal_id))
    for m, deal_id in documents:
        check.page("webhook", "printable payment details", lead.get(f"/deals/{deal_id}/document"), [m])

    # 9. A mention entered by hand on the monitoring page (issue 11): its text, author, title and source name in
    #    the triage queue, and a dangerous address in its URL (refused at the door, or shown inert).
    for n, template in enumerate(TEXT_PAYLOADS + URL_PAYLOADS):
        m = marker("m", n)
        payload = template.format(m=m)
        is_url = n >= len(TEXT_PAYLOADS)
        form = {"_csrf": token, "deal_id": "agency", "url": payload if is_url else f"https://forum.example/{m}",
                "source_name": f"Url {m}" if is_url else payload, "author": "" if is_url else payload,
                "title": "" if is_url else payload, "text": f"Url {m}" if is_url else payload}
        response = lead.post("/monitoring/new", data=form, headers=hx)
        if check.entry("manual mention", response, payload):
            check.page("manual mention", "mentions queue", lead.get("/monitoring", params={"q": m}), [m])

    # Every page that shows what came in.
    all_markers = [marker(w, n) for w in WAYS for n in range(len(TEXT_PAYLOADS + URL_PAYLOADS))]
    for way, ids in deals.items():
        for deal_id in ids:
            check.page(f"way {way}", "deal card", lead.get(f"/deals/{deal_id}"), all_markers)
    check.page("all", "board", lead.get("/deals"), all_markers)
    check.page("all", "tasks (everyone's)", lead.get("/tasks", params={"scope": "all"}), all_markers)
    check.page("all", "leads list", lead.get("/leads"), all_markers)
    if waived:
        # The reversals land in the first open month after the closed one(s): find the statement showing them
        # (its printable view holds every line; the screen view pages by 50).
        def statement_with_reasons():
            for month in following_months(months[-1]):
                response = lead.get(f"/payroll/statements/{month}/manager1", params={"print": "1"})
                if all(m in response.text for m in waived):
                    return month, response
            return None

        found = wait_for(statement_with_reasons, 60)
        assert found is not None, "the waiver reasons never reached a payroll statement"
        month, printable = found
        check.page("waiver reason", "payroll statement (print)", printable, waived)
        for page_no in range(1, 10):
            screen = lead.get(f"/payroll/statements/{month}/manager1", params={"page": str(page_no)})
            check.page("waiver reason", "payroll statement", screen, waived)
            if f"page={page_no + 1}" not in screen.text:
                break
    lead.close()

    record("XSS: corpus x ways in x pages (renders checked)", check.tried, check.inert + check.refused_at_entry,
           f"refused at entry {check.refused_at_entry}, pages showing a payload {check.shown}, "
           f"executable {len(check.findings)}")
    assert check.shown >= 20, "the payloads did not reach the pages: the check would be vacuous"
    assert not check.findings, "\n".join(check.findings[:40])
