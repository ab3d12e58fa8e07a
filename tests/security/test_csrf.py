"""CSRF on every unsafe gateway route (issue 8; DESIGN 8: a token on every unsafe request).

The unsafe routes are collected from the gateway app's own route list, so a new form is covered the day
it is added. Each is attacked with a signed-in project lead's session cookie (the role that may use every
page, so a refusal can only be the CSRF check) — no token, a wrong token, the token of another session
(the attacker's own), and from a foreign Origin — and every attempt must be refused (403) with nothing
changed. The public forms (sign-in, the client's questionnaire) are attacked the same way anonymously.
The `/api` and `/webhooks` routing takes no cookie at all: a session cookie alone is refused there.
"""

from __future__ import annotations

import re
import secrets
import uuid

import httpx

from .figures import record
from .stack import Stack, csrf_of, webform_token
from .test_matrix import PAGES, concrete, gateway_page_routes, ids_of

ATTACKS = ("no token", "wrong token", "another session's token", "foreign Origin, no token",
           "foreign Origin, wrong token")
EVIL = "https://evil.example"
# Public forms with a signed token of their own instead of the session's (the embeddable website form, issue 11):
# the attacks drop, forge or swap that token.
OWN_TOKEN = {"/f/{slug}": "_form"}


def unsafe_page_routes(tmp_path) -> list[tuple[str, str]]:
    return sorted((m, p) for m, p in gateway_page_routes(tmp_path) if m not in ("GET", "HEAD", "OPTIONS"))


def attack(client: httpx.Client, method: str, url: str, how: str, other_token: str, form: dict[str, str],
           field: str = "_csrf") -> httpx.Response:
    data = dict(form)
    headers: dict[str, str] = {}
    if how in ("wrong token", "foreign Origin, wrong token"):
        data[field] = secrets.token_urlsafe(32)
    elif how == "another session's token":
        data[field] = other_token
        if field == "_csrf":
            headers["X-CSRF-Token"] = other_token
    if how.startswith("foreign Origin"):
        headers |= {"Origin": EVIL, "Referer": f"{EVIL}/attack.html", "Sec-Fetch-Site": "cross-site"}
    return client.request(method, url, data=data, headers=headers)


def test_issue8_csrf_every_unsafe_gateway_route_refuses_forged_requests(stack: Stack, tmp_path) -> None:
    routes = unsafe_page_routes(tmp_path)
    assert len(routes) >= 15, routes
    forms = {(p.method, p.path): p.form for p in PAGES}
    ids = {**ids_of(stack), "manager": "manager2"}
    victim = stack.browser("lead")
    attacker = stack.browser("content_manager")
    attacker_token = stack.csrf(attacker)
    anonymous = httpx.Client(base_url=stack.gateway, timeout=30, follow_redirects=False)
    anonymous_other = csrf_of(httpx.get(f"{stack.gateway}/login", timeout=30).text)
    anonymous.get("/login")   # the anonymous CSRF cookie of the login form
    tried = refused = 0
    accepted: list[str] = []
    for method, path in routes:
        public = path in ("/login", "/q/{token}", *OWN_TOKEN)
        client, other = (anonymous, anonymous_other) if public else (victim, attacker_token)
        form = forms.get((method, path), {})
        field = OWN_TOKEN.get(path, "_csrf")
        if field != "_csrf":   # the valid token of the table's row is what the attacks take away
            form = {k: v for k, v in form.items() if k != field}
            other = webform_token("another-form")
        if path == "/login":
            form = {"login": "lead", "password": "demo", "next": "/"}
        for how in ATTACKS:
            response = attack(client, method, concrete(path, ids), how, other, form, field)
            tried += 1
            if response.status_code == 403:
                refused += 1
            else:
                accepted.append(f"{how}: {method} {path} -> {response.status_code}")
    # The victim's session is intact (sign-out was refused too), and the forged sign-in signed nobody in.
    assert victim.get("/", follow_redirects=False).status_code == 200
    assert anonymous.get("/", follow_redirects=False).status_code == 303
    record("CSRF: unsafe gateway routes x forged requests", tried, refused, f"routes: {len(routes)}")
    for client in (victim, attacker, anonymous):
        client.close()
    assert not accepted, "\n".join(accepted)


def test_issue8_csrf_a_refused_form_changes_nothing(stack: Stack) -> None:
    victim = stack.browser("lead")
    name = f"Csrf Lead {uuid.uuid4().hex[:6]}"
    for how in ATTACKS:
        response = attack(victim, "POST", "/leads", how, "x" * 43, {"full_name": name, "phone": "+77010003333"})
        assert response.status_code == 403
    found = stack.api("clients", "GET", "/leads", params={"q": name})
    assert found == [], found
    # With the session's own token the same form works: the refusals above were the CSRF check.
    ok = victim.post("/leads", data={"_csrf": stack.csrf(victim), "full_name": name, "phone": "+77010003333"})
    assert ok.status_code in (200, 303), ok.text[:300]
    assert len(stack.api("clients", "GET", "/leads", params={"q": name})) == 1
    victim.close()


def test_issue8_csrf_the_api_routing_takes_no_session_cookie(stack: Stack) -> None:
    """A signed-in browser's cookie is no credential for /api or /webhooks: a cross-site form posting there
    gets a 401, whatever the Origin."""
    victim = stack.browser("lead")
    tried = refused = 0
    for method, path in (("POST", "/api/clients/payments"), ("POST", "/api/clients/leads"),
                         ("PUT", "/api/payroll/rules"), ("POST", f"/api/clients/deals/{stack.foreign.deal_id}/"
                                                                  "credentials/reveal"),
                         ("POST", "/webhooks/clients/payments")):
        response = victim.request(method, path, json={"full_name": "x"},
                                  headers={"Origin": EVIL, "X-CSRF-Token": stack.csrf(victim)})
        tried += 1
        refused += response.status_code in (401, 403, 404)
        assert response.status_code in (401, 403, 404), (method, path, response.status_code)
        assert not re.search(r"Foreign-Instagram-Secret", response.text)
    record("CSRF: /api and /webhooks with a session cookie only", tried, refused)
    victim.close()
