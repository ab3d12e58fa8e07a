"""Issue 8 §4 / CL-1: a client card shared across managers by phone match (decision in
`clients.services.deals.find_or_create_client`).

A returning client (same phone digits) keeps one card, whoever the new deal's manager is. The card is seen
and edited only through a deal the actor may see / change: the managers of any of its deals (and the lead)
see it, a manager with no deal for that client never does. Every edit is audited and written on the
timeline of every deal of the client, so each manager concerned sees it. One card per phone: an edit may
not take another card's phone.
"""

from __future__ import annotations

from .conftest import payment

LEAD = ("boss", "lead")
M1 = ("manager1", "content_manager")
M2 = ("manager2", "content_manager")
M3 = ("manager3", "content_manager")   # a manager with no deal for the client


async def test_issue8_4_cl1_returning_client_keeps_one_card_seen_only_by_the_managers_of_its_deals(api_any) -> None:
    first = await api_any.pay(payment("pay-shared-1", responsible_manager="manager1"))
    again = payment("pay-shared-2", responsible_manager="manager2")
    again["client"] |= {"phone": first["client"]["phone"].replace(" ", ""), "full_name": "Somebody Else",
                        "notes": "from the second payment"}
    second = await api_any.pay(again)
    assert second["client_id"] == first["client_id"] and second["deal_id"] != first["deal_id"]
    # The second payment's card fields do not overwrite the card (an edit does, audited).
    assert second["client"]["full_name"] == first["client"]["full_name"] and second["client"]["notes"] == ""

    # Each manager sees the card through their own deal only; the other's deal does not exist for them.
    for who, own, other in ((M1, first, second), (M2, second, first)):
        mine = await api_any.get(f"/deals/{own['deal_id']}", who)
        assert mine.status_code == 200 and mine.json()["client"]["id"] == first["client_id"]
        assert (await api_any.get(f"/deals/{other['deal_id']}", who)).status_code == 404
        listed = await api_any.get("/deals", who, params={"limit": "200"})
        assert [d["id"] for d in listed.json()] == [own["deal_id"]], who
    # A manager with no deal for the client: no read, no write, nothing in a list.
    for deal in (first, second):
        assert (await api_any.get(f"/deals/{deal['deal_id']}", M3)).status_code == 404
        refused = await api_any.client.patch(f"/api/clients/deals/{deal['deal_id']}/client",
                                             headers=api_any.headers(M3), json={"notes": "not mine"})
        assert refused.status_code == 404
    assert (await api_any.get("/deals", M3, params={"limit": "200"})).json() == []
    assert (await api_any.deal(first["deal_id"]))["client"]["notes"] == ""

    # manager1 edits the shared card through their own deal: audited, and on BOTH deals' timelines,
    # so manager2 sees on their deal who changed their client's card.
    edit = await api_any.client.patch(f"/api/clients/deals/{first['deal_id']}/client", headers=api_any.headers(M1),
                                      json={"email": "new@example.kz", "notes": "prefers WhatsApp"})
    assert edit.status_code == 200, edit.text
    seen_by_m2 = (await api_any.get(f"/deals/{second['deal_id']}", M2)).json()
    assert seen_by_m2["client"]["email"] == "new@example.kz"
    [entry] = [h for h in seen_by_m2["timeline"] if h["code"] == "client.updated"]
    assert entry["by"] == "manager1" and entry["data"]["fields"] == ["email", "notes"]
    [audit] = [a for a in await api_any.ok("get", f"/audit?target={first['client_id']}", as_=LEAD)
               if a["action"] == "client.updated"]
    assert audit["actor"] == "manager1" and audit["detail"]["changes"]["email"] == ["aigerim@example.kz",
                                                                                     "new@example.kz"]


async def test_issue8_4_cl1_an_edit_may_not_take_another_cards_phone(api_any) -> None:
    """One card per phone: a manager cannot steer another client's next payment onto their own card by
    giving it that client's phone (409 naming the field, the other card not named, nothing written)."""
    mine = await api_any.pay(payment("pay-shared-3", responsible_manager="manager1"))
    theirs = await api_any.pay(payment("pay-shared-4", responsible_manager="manager2"))
    url = f"/api/clients/deals/{mine['deal_id']}/client"
    taken = await api_any.client.patch(url, headers=api_any.headers(M1),
                                       json={"phone": theirs["client"]["phone"], "notes": "x"})
    assert taken.status_code == 409, taken.text
    assert [e["field"] for e in taken.json()["errors"]] == ["phone"]
    assert theirs["client"]["full_name"] not in taken.text and theirs["client_id"] not in taken.text
    card = (await api_any.deal(mine["deal_id"]))["client"]
    assert card["phone"] == mine["client"]["phone"] and card["notes"] == ""
    # Its own number written differently is the same phone: allowed.
    digits = "".join(ch for ch in mine["client"]["phone"] if ch.isdigit())
    same = await api_any.client.patch(url, headers=api_any.headers(M1), json={"phone": f"+{digits}"})
    assert same.status_code == 200, same.text
    # The next payment with the other client's phone still goes to the other client's card.
    back = payment("pay-shared-5", responsible_manager="manager2")
    back["client"]["phone"] = theirs["client"]["phone"]
    assert (await api_any.pay(back))["client_id"] == theirs["client_id"]
