"""CL-1: editing the client card (PATCH /deals/{deal_id}/client): validated like a new client's card,
audited (who changed what), allowed to the lead and the deal's responsible manager, and written on the
timeline of every deal of the client."""

from __future__ import annotations

from .conftest import payment

LEAD = ("boss", "lead")
MANAGER = ("manager1", "content_manager")


async def test_cl1_client_card_edit_by_the_responsible_manager_is_audited_and_on_the_timeline(api_any) -> None:
    deal = await api_any.pay(payment("pay-card-1", responsible_manager="manager1"))
    path = f"/deals/{deal['deal_id']}/client"
    changed = await api_any.client.patch(f"/api/clients{path}", headers=api_any.headers(MANAGER), json={
        "full_name": "Айгерим Сапарова-Ким", "phone": "+7 (701) 555-12-34", "email": "a.kim@example.kz",
        "notes": "звонить после 14:00"})
    assert changed.status_code == 200, changed.text
    client = changed.json()["client"]
    assert (client["full_name"], client["phone"], client["email"], client["notes"]) == (
        "Айгерим Сапарова-Ким", "+7 (701) 555-12-34", "a.kim@example.kz", "звонить после 14:00")
    assert client["instagram"] == "https://instagram.com/aigerim.cakes"  # untouched fields stay
    assert changed.json()["client_name"] == "Айгерим Сапарова-Ким"
    [entry] = [h for h in changed.json()["timeline"] if h["code"] == "client.updated"]
    assert entry["by"] == "manager1" and entry["data"]["fields"] == ["email", "full_name", "notes", "phone"]
    [audit] = [a for a in await api_any.ok("get", f"/audit?target={client['id']}") if a["action"] == "client.updated"]
    assert audit["actor"] == "manager1"
    assert audit["detail"]["changes"]["email"] == ["aigerim@example.kz", "a.kim@example.kz"]
    # Nothing changed: no new entry.
    again = await api_any.client.patch(f"/api/clients{path}", headers=api_any.headers(MANAGER),
                                       json={"email": "a.kim@example.kz"})
    assert len([h for h in again.json()["timeline"] if h["code"] == "client.updated"]) == 1


async def test_cl1_client_card_legal_entity_needs_company_name_and_12_digit_bin(api_any) -> None:
    deal = await api_any.pay(payment("pay-card-2"))
    url = f"/api/clients/deals/{deal['deal_id']}/client"
    refused = await api_any.client.patch(url, headers=api_any.headers(LEAD), json={"payer_type": "legal", "bin": "12345"})
    assert refused.status_code == 422
    fields = {e["field"]: e["message"] for e in refused.json()["errors"]}
    assert fields == {"company_name": "required", "bin": "a BIN/IIN is 12 digits"}   # issue 9: the code's English
    bad = await api_any.client.patch(url, headers=api_any.headers(LEAD), json={
        "email": "not-an-email", "phone": "call me", "full_name": " "})
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"email", "phone", "full_name"}
    wrong_type = await api_any.client.patch(url, headers=api_any.headers(LEAD), json={"payer_type": "company"})
    assert wrong_type.status_code == 400 or wrong_type.status_code == 422
    ok = await api_any.client.patch(url, headers=api_any.headers(LEAD), json={
        "payer_type": "legal", "company_name": "ТОО «Сладкий дом»", "bin": "123456789012"})
    assert ok.status_code == 200, ok.text
    assert ok.json()["client"]["payer_type"] == "legal" and ok.json()["client"]["bin"] == "123456789012"
    assert (await api_any.deal(deal["deal_id"]))["client"]["company_name"] == "ТОО «Сладкий дом»"


async def test_cl1_client_card_edit_roles(api_any) -> None:
    deal = await api_any.pay(payment("pay-card-3", responsible_manager="manager1"))
    url = f"/api/clients/deals/{deal['deal_id']}/client"
    body = {"notes": "x"}
    other = await api_any.client.patch(url, headers=api_any.headers(("manager2", "content_manager")), json=body)
    assert other.status_code == 404  # another manager's deal does not exist for them
    for who in (("analyst", "analyst"), ("growth", "growth")):
        response = await api_any.client.patch(url, headers=api_any.headers(who), json=body)
        assert response.status_code in (403, 404), who
    assert (await api_any.deal(deal["deal_id"]))["client"]["notes"] == ""
    assert (await api_any.client.patch(url, headers=api_any.headers(LEAD), json=body)).status_code == 200
    missing = await api_any.client.patch("/api/clients/deals/nope/client", headers=api_any.headers(LEAD), json=body)
    assert missing.status_code == 404


async def test_cl1_client_card_edit_shows_on_every_deal_of_the_client(api) -> None:
    first = await api.pay(payment("pay-card-4"))
    body = payment("pay-card-5")
    body["client"]["phone"] = first["client"]["phone"]  # the same person pays again: one card, two deals
    second = await api.pay(body)
    assert second["client_id"] == first["client_id"] and second["deal_id"] != first["deal_id"]
    response = await api.client.patch(f"/api/clients/deals/{second['deal_id']}/client", headers=api.headers(LEAD),
                                      json={"instagram": "https://instagram.com/aigerim.new"})
    assert response.status_code == 200, response.text
    for deal_id in (first["deal_id"], second["deal_id"]):
        deal = await api.deal(deal_id)
        assert deal["client"]["instagram"] == "https://instagram.com/aigerim.new"
        assert [h["data"]["fields"] for h in deal["timeline"] if h["code"] == "client.updated"] == [["instagram"]]


async def test_issue10_client_profile_changed_on_creation_and_every_card_edit_for_each_deal(api_any) -> None:
    """Issue 10 / CL-1: the content service learns the client's name and Instagram handle from
    `clients.client.profile_changed.v1` in the outbox: on creation (CL-3) and every card edit, per deal."""
    first = await api_any.pay(payment("pay-prof-1", responsible_manager="manager1"))
    [created] = await api_any.events("clients.client.profile_changed.v1")
    assert (created.deal_id, created.full_name, created.instagram) == (
        first["deal_id"], "Айгерим Сапарова", "https://instagram.com/aigerim.cakes")
    assert created.deal_ids == [first["deal_id"]] and created.client_id
    # The same person pays again (same phone): a second deal of the same client.
    body = payment("pay-prof-2", responsible_manager="manager1")
    body["client"]["phone"] = payment("pay-prof-1")["client"]["phone"]
    second = await api_any.pay(body)
    assert second["deal_id"] != first["deal_id"]
    changed = await api_any.client.patch(f"/api/clients/deals/{first['deal_id']}/client",
                                         headers=api_any.headers(LEAD), json={"instagram": "@aigerim.sweets"})
    assert changed.status_code == 200, changed.text
    edits = [e for e in await api_any.events("clients.client.profile_changed.v1") if e.instagram == "https://instagram.com/aigerim.sweets"]
    assert sorted(e.deal_id for e in edits) == sorted([first["deal_id"], second["deal_id"]])
    assert all(sorted(e.deal_ids) == sorted([first["deal_id"], second["deal_id"]]) for e in edits)
    assert {e.client_id for e in edits} == {created.client_id}
    # Nothing changed: nothing published.
    before = len(await api_any.events("clients.client.profile_changed.v1"))
    await api_any.client.patch(f"/api/clients/deals/{first['deal_id']}/client", headers=api_any.headers(LEAD),
                               json={"instagram": "@aigerim.sweets"})
    assert len(await api_any.events("clients.client.profile_changed.v1")) == before
