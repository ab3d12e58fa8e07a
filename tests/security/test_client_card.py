"""Issue 8 §4, object level: a client card shared across managers by phone match.

Decision (clients.services.deals.find_or_create_client): a returning client (same phone digits) keeps one
card; it is seen and edited only through a deal the actor may see / change — the managers of any of its
deals and the lead see it, a manager with no deal for that client never does (not by the deal, not by the
card edit route, not in any list or search, not on a gateway page); every edit is audited and written on
the timeline of every deal of the client. Tried on the services' own port and through the gateway pages.
"""

from __future__ import annotations

import uuid

import httpx

from .figures import record
from .identity import staff_headers
from .stack import FOREIGN_NAME, Stack, payment_body

C = "/api/clients"
SEARCHES = ({"q": "{name}"}, {"search": "{name}"}, {"client": "{name}"}, {"phone": "{phone}"},
            {"manager": "manager2"}, {"limit": "200"})
LISTS = ("/deals", "/tasks", "/deadlines", "/leads", "/board", "/clients")


def _as(login: str) -> dict[str, str]:
    return staff_headers(login, "content_manager", "clients")


def test_issue8_4_a_shared_client_card_is_seen_and_edited_only_through_a_visible_deal(stack: Stack) -> None:
    tag = uuid.uuid4().hex[:8]
    shared_name = f"Shared Card {tag}"
    mine = stack.api("clients", "POST", "/payments", json=payment_body(f"card-{tag}-1", "manager1", name=shared_name))
    again = payment_body(f"card-{tag}-2", "manager2", name=f"Other Name {tag}")
    again["client"]["phone"] = mine["client"]["phone"]
    theirs = stack.api("clients", "POST", "/payments", json=again)
    assert theirs["client_id"] == mine["client_id"], "a returning client keeps one card (CL-1)"
    foreign = stack.foreign.deal_id
    foreign_phone = stack.api("clients", "GET", f"/deals/{foreign}")["client"]["phone"]
    base = stack.urls["clients"]
    tried = refused = 0
    holes: list[str] = []

    def attempt(what: str, response: httpx.Response, ok: bool) -> None:
        nonlocal tried, refused
        tried += 1
        refused += ok
        if not ok:
            holes.append(f"{what} -> {response.status_code} {response.text[:200]}")

    with httpx.Client(timeout=30) as http:
        # manager1 has no deal of manager2's foreign client: no read, no write, in no list or search.
        for deal_id in (foreign, theirs["deal_id"]):
            r = http.get(f"{base}{C}/deals/{deal_id}", headers=_as("manager1"))
            attempt(f"manager1 GET deal {deal_id}", r, r.status_code == 404)
            r = http.patch(f"{base}{C}/deals/{deal_id}/client", headers=_as("manager1"), json={"notes": "hijack"})
            attempt(f"manager1 PATCH client of deal {deal_id}", r, r.status_code == 404)
        for path in LISTS:
            for params in SEARCHES:
                query = {k: v.format(name=FOREIGN_NAME, phone=foreign_phone) for k, v in params.items()}
                r = http.get(f"{base}{C}{path}", headers=_as("manager1"), params=query)
                leaked = FOREIGN_NAME in r.text or foreign in r.text or theirs["deal_id"] in r.text
                attempt(f"manager1 GET {path} {query}", r, r.status_code < 500 and not leaked)
        # A manager of neither deal sees nothing of the shared card.
        for deal_id in (mine["deal_id"], theirs["deal_id"]):
            r = http.get(f"{base}{C}/deals/{deal_id}", headers=_as("manager3"))
            attempt(f"manager3 GET deal {deal_id}", r, r.status_code == 404)
            r = http.patch(f"{base}{C}/deals/{deal_id}/client", headers=_as("manager3"), json={"notes": "not mine"})
            attempt(f"manager3 PATCH client of deal {deal_id}", r, r.status_code == 404)
        r = http.get(f"{base}{C}/deals", headers=_as("manager3"), params={"limit": "200"})
        attempt("manager3 GET /deals", r, shared_name not in r.text and mine["client_id"] not in r.text)
        # Taking the foreign client's phone would steer its next payment onto manager1's card: refused.
        r = http.patch(f"{base}{C}/deals/{mine['deal_id']}/client", headers=_as("manager1"),
                       json={"phone": foreign_phone})
        attempt("manager1 gives their card the foreign client's phone", r,
                r.status_code == 409 and FOREIGN_NAME not in r.text and foreign not in r.text)

        # Each manager of a deal of the shared card sees it; an edit by one is on the other's timeline.
        note = f"edited by manager1 {tag}"
        edit = http.patch(f"{base}{C}/deals/{mine['deal_id']}/client", headers=_as("manager1"), json={"notes": note})
        assert edit.status_code == 200, edit.text
        seen = http.get(f"{base}{C}/deals/{theirs['deal_id']}", headers=_as("manager2"))
        assert seen.status_code == 200 and seen.json()["client"]["notes"] == note
        assert [(h["by"], h["data"]["fields"]) for h in seen.json()["timeline"] if h["code"] == "client.updated"] \
            == [("manager1", ["notes"])]
        audit = stack.api("clients", "GET", f"/audit?target={mine['client_id']}",
                          headers=staff_headers("lead", "lead", "clients"))
        assert [a["actor"] for a in audit if a["action"] == "client.updated"] == ["manager1"]
        foreign_card = stack.api("clients", "GET", f"/deals/{foreign}")["client"]
        assert "hijack" not in foreign_card["notes"] and foreign_card["phone"] == foreign_phone

    # Through the gateway: manager1's pages never show the foreign client or manager2's deal of the shared
    # card; the card edit form on another's deal is refused; manager2's deal page shows manager1's edit.
    m1 = stack.browser("content_manager")
    token = stack.csrf(m1)
    for url in ("/deals", f"/deals?q={FOREIGN_NAME}", f"/deals?search={FOREIGN_NAME}", "/tasks", "/leads",
                f"/deals/{foreign}", f"/deals/{theirs['deal_id']}", "/clients", f"/clients?q={FOREIGN_NAME}",
                f"/clients/{stack.foreign.client_id}", f"/deals/column?stage=new&q={FOREIGN_NAME}"):
        r = m1.get(url)
        shown = r.text.replace(f'value="{FOREIGN_NAME}"', "")   # the search box echoes what manager1 typed
        attempt(f"gateway manager1 GET {url}", r, r.status_code < 500 and FOREIGN_NAME not in shown
                and theirs["deal_id"] not in shown.replace(f"/deals/{theirs['deal_id']}", ""))
    for deal_id in (foreign, theirs["deal_id"]):
        r = m1.post(f"/deals/{deal_id}/client", data={"_csrf": token, "notes": "gateway hijack"},
                    headers={"HX-Request": "true", "X-CSRF-Token": token})
        attempt(f"gateway manager1 POST /deals/{deal_id}/client", r, r.status_code in (403, 404))
    m1.close()
    m2 = httpx.Client(base_url=stack.gateway, timeout=30, follow_redirects=False)
    stack.sign_in(m2, "manager2")
    page = m2.get(f"/deals/{theirs['deal_id']}")
    assert page.status_code == 200 and note in page.text, page.status_code
    m2.close()
    assert "gateway hijack" not in stack.api("clients", "GET", f"/deals/{foreign}")["client"]["notes"]

    record("shared client card (issue 8 §4): reads/writes without a deal", tried, refused,
           f"unauthorised: {len(holes)}")
    assert not holes, "\n".join(holes)
