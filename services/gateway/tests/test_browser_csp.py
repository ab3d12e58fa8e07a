"""Issue 8 §7 in a real browser: the main pages load under the Content-Security-Policy (no inline
script, no inline style, no eval) with ZERO CSP violations, while htmx still works — a task is
completed and a deal is moved on the board, both through htmx.

Served live: a real clients service (its own process, the test's nats-server) and the gateway; the
browser is Debian's chromium. Violations are collected two ways: the `securitypolicyviolation` DOM
event (listener installed before any page script) and the console's "Refused to …" messages.
"""

from __future__ import annotations

import re

import pytest
from gateway.app import create_app
from shared.testing import page_true

from .backends import Backend, payment, roster, serve_clients
from .conftest import down_service_urls, gateway_settings
from .test_clients_pages import launched_deal

pytestmark = pytest.mark.browser

LISTEN = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " @ " + location.pathname);
});
"""


async def test_issue8_7_main_pages_have_zero_csp_violations_and_htmx_works(browser_page, live_server,
                                                                            service_process, nats_server,
                                                                            tmp_path) -> None:
    clients_url = serve_clients(service_process, nats_server.url)
    clients = Backend(clients_url, "clients")
    roster(clients)
    first = clients.call("POST", "/payments", payment("csp-1", name="Гульнара Первая"))
    second = clients.call("POST", "/payments", payment("csp-2", name="Берик Омаров"))
    lead = clients.call("POST", "/leads", {"full_name": "Лид Тестов", "phone": "+7 701 000 0001",
                                           "owner": "manager1"})
    link = clients.call("POST", f"/deals/{first['id']}/questionnaire-link", as_=("manager1", "content_manager"))
    renewing = launched_deal(clients, "csp-doc", days_ago=29)   # the printable document (CL-12)
    clients.call("POST", f"/deals/{renewing['id']}/stage", {"stage": "notification_sent"})
    app = create_app(gateway_settings(f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}",
                                      service_urls={**down_service_urls(), "clients": clients_url}))
    base = live_server(app)

    page = browser_page
    console: list[str] = []
    page.on("console", lambda msg: console.append(msg.text))
    await page.add_init_script(LISTEN)

    async def visit(path: str) -> None:
        response = await page.goto(base + path)
        assert response is not None
        csp = (await response.all_headers()).get("content-security-policy", "")
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp, path
        assert "frame-ancestors 'none'" in csp, path
        await page.wait_for_load_state("load")

    async def sign_in(login: str) -> None:
        await visit("/login")
        await page_true(page, "window.htmx !== undefined")
        await page.fill("input[name=login]", login)
        await page.fill("input[name=password]", "demo")
        await page.click("#login-form button[type=submit]")   # htmx form: HX-Redirect on success
        await page.wait_for_url(base + "/")

    await visit(f"/q/{link['token']}")            # the public questionnaire
    await sign_in("manager1")

    # htmx 1: complete the first-call task on My tasks.
    await visit("/tasks")
    row = page.locator("#tasks tbody tr").filter(has_text="Гульнара Первая")
    await row.locator("button[type=submit]").click()
    await page.locator("#tasks .alert.success").wait_for()
    assert await page.locator("#tasks tbody tr").filter(has_text="Гульнара Первая").count() == 0

    # htmx 2: move the other deal to "Contacted" on the board.
    await visit("/deals")
    card = page.locator(f"#card-{second['id']}")
    await card.locator("summary").click()
    await card.locator("select[name=stage]").select_option("contacted")
    await card.locator("button[type=submit]").click()
    await page.locator('.column[data-stage="contacted"]').filter(has_text="Берик Омаров").wait_for()

    await visit(f"/deals/{renewing['id']}/document")
    await page.locator("[data-print]").wait_for()
    assert await page.evaluate("getComputedStyle(document.body).maxWidth") == "780px"   # its <style> applied
    for path in (f"/deals/{first['id']}", "/leads", f"/leads/{lead['id']}", "/reports/funnel", "/payroll",
                 "/no-such-page"):
        await visit(path)
    # A boosted-free htmx fragment swap on the leads list (filter change).
    await visit("/leads")
    await page.fill("input[name=q]", "Лид")
    await page.press("input[name=q]", "Enter")
    await page.locator("#leads").filter(has_text="Лид Тестов").wait_for()

    await page.click("text=Выйти")
    await page.wait_for_url(re.compile(re.escape(base) + "/login.*"))
    await sign_in("lead")
    for path in ("/staff", "/status", "/imports", "/payroll/rules"):
        await visit(path)

    violations = await page.evaluate("window.__csp")
    refused = [m for m in console if "Content Security Policy" in m or "Refused to" in m]
    assert violations == [] and refused == [], (violations, refused)

    # The listener does see a violation when there is one (an inline style set from a script).
    await page.evaluate("document.body.setAttribute('style', 'color: red')")
    await page_true(page, "window.__csp.length > 0")
