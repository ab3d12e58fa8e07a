"""The care team page (issues 11 and 12, EN-6) against a REAL engagement service: agents by name with their
shift, cap, team and accounts; a senior agent changes shifts, caps and accounts but not teams; the lead names
teams; a bad cap is refused next to the field and changes nothing; the care report narrows to a team."""

from __future__ import annotations

import pytest
from shared.settings import Settings

from .backends import Backend
from .conftest import csrf_of, down_service_urls, gateway_settings, sign_in
from .test_care_quality_pages import answered_conversation, text_of

LEAD = ("lead", "lead")


@pytest.fixture
def engagement_url(service_process, nats_server) -> str:
    return service_process("engagement", nats_url=nats_server.url)


@pytest.fixture
def settings(tmp_path, engagement_url: str) -> Settings:
    return gateway_settings(f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}",
                            service_urls={**down_service_urls(), "engagement": engagement_url})


async def test_care_team_page_shifts_caps_accounts_and_teams(client, engagement_url) -> None:
    answered_conversation(engagement_url)           # agent1 serves the agency's own accounts
    await sign_in(client, "senior1")
    page = await client.get("/care/team")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "Асель Жумабаева" in text and "Руслан Ким" in text and "agent1" not in text
    assert 'name="team"' not in page.text                        # only the lead names teams
    csrf = csrf_of(page.text)

    bad = await client.post("/care/team/agent2", data={"_csrf": csrf, "cap": "много", "on_shift": "on",
                                                       "accounts": "agency"}, headers={"HX-Request": "true"})
    assert bad.status_code == 422 and "field-error" in bad.text and "1000" in text_of(bad.text)
    backend = Backend(engagement_url, "engagement")
    assert all(a["login"] != "agent2" for a in backend.call("GET", "/agents", as_=LEAD))    # nothing changed

    saved = await client.post("/care/team/agent2", data={"_csrf": csrf, "cap": "5", "on_shift": "on",
                                                         "accounts": "agency"}, headers={"HX-Request": "true"})
    assert saved.status_code == 200 and 'role="status"' in saved.text
    agent2 = next(a for a in backend.call("GET", "/agents", as_=LEAD) if a["login"] == "agent2")
    assert (agent2["on_shift"], agent2["cap"], agent2["accounts"], agent2["team"]) == (True, 5, ["agency"], None)

    await client.post("/logout", data={"_csrf": csrf})
    csrf = await sign_in(client, "lead")
    page = await client.get("/care/team")
    assert 'name="team"' in page.text
    for login, team in (("agent1", "Алматы"), ("senior1", "Алматы"), ("agent2", "Астана")):
        response = await client.post(f"/care/team/{login}", data={"_csrf": csrf, "team": team, "cap": "",
                                                                   "accounts": "agency"},
                                     follow_redirects=False)
        assert response.status_code == 303, response.text
    text = text_of((await client.get("/care/team")).text)
    assert "Алматы" in text and "Астана" in text

    report = await client.get("/care/reports", params={"team": "Астана"})
    assert report.status_code == 200 and "Асель Жумабаева" not in text_of(report.text)
    report = await client.get("/care/reports", params={"team": "Алматы"})
    assert "Асель Жумабаева" in text_of(report.text) and '<option value="Астана"' in report.text
    csv = await client.get("/care/reports.csv", params={"team": "Алматы"})
    assert "Алматы" in csv.content.decode("utf-8-sig")

    await client.post("/logout", data={"_csrf": csrf})
    await sign_in(client, "agent1")
    assert (await client.get("/care/team")).status_code == 403
