"""CO-7 weekly statistics: the CSV reading rules as unit tests, and the import, manual entry and weekly
figures through the HTTP API (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date

import pytest
from content import stats_rules

from .conftest import ANALYST, LEAD, OTHER, T0, midnight, new_deal, period_opened

RU_CSV = ("Дата;Охват;Отметки «Нравится»;Комментарии;Сохранения;Подписчики;Показы\n"
          "23.02.2026;1 200;80;5;3;2 000;5 000\n"
          "24.02.2026;1 300;90;6;4;2 010;5 100\n"
          "02.03.2026;1 500;100;10;5;2 050;6 000\n"
          "03.03.2026;abc;120;12;;2 060;6 100\n"
          "2026-03-04;1 700;110;9;7;2 075;6 200\n"
          "04/05/2026;1 000;1;1;1;2 080;1\n").encode()


def test_co7_counts_with_thousands_separators() -> None:
    assert [stats_rules.parse_count(t) for t in ("12 345", "12,345", "12.345", "12'345", "1 234 567", "7",
                                                  "12\u00a0345", "12345")] == [12345, 12345, 12345, 12345,
                                                                               1234567, 7, 12345, 12345]
    for bad in ("12,5", "1,23,456", "1 234,567", "-3", "abc", "1.5e3"):
        with pytest.raises(ValueError):
            stats_rules.parse_count(bad)


def test_co7_csv_headers_by_name_in_any_language_missing_columns_and_row_errors() -> None:
    parsed = stats_rules.parse_csv(RU_CSV)
    assert parsed.columns == {"date": "Дата", "reach": "Охват", "likes": "Отметки «Нравится»",
                              "comments": "Комментарии", "saves": "Сохранения", "followers": "Подписчики"}
    assert parsed.ignored == ["Показы"] and parsed.rows == 6
    assert [(e["row"], e["field"]) for e in parsed.errors] == [(5, "reach"), (7, "date")]
    assert parsed.days[date(2026, 3, 4)] == {"reach": 1700, "likes": 110, "comments": 9, "saves": 7,
                                             "followers": 2075}
    zh = stats_rules.parse_csv("日期,覆盖人数,赞\n2026-03-02,\"1,500\",100\n".encode())
    assert zh.days == {date(2026, 3, 2): {"reach": 1500, "likes": 100}} and not zh.errors
    kk = stats_rules.parse_csv("\ufeffКүні\tҚамту\tЛайктар\n02.03.2026\t900\t40\n".encode("utf-16"))
    assert kk.days == {date(2026, 3, 2): {"reach": 900, "likes": 40}}
    assert stats_rules.parse_csv(b"Reach,Likes\n1,2\n").errors[0]["field"] == "date"


def test_co7_weeks_engagement_rate_and_change() -> None:
    assert stats_rules.week_start(date(2026, 3, 8)) == date(2026, 3, 2)
    days = {date(2026, 3, 2): {"likes": 10, "comments": 2, "saves": None, "reach": 100, "followers": 50},
            date(2026, 3, 3): {"likes": 5, "comments": None, "saves": 3, "reach": 80, "followers": 55}}
    week = stats_rules.week_totals(days)
    assert week == {"likes": 15, "comments": 2, "saves": 3, "reach": 180, "followers": 55}
    assert stats_rules.engagement_rate(week) == round(20 / 180, 4)
    assert stats_rules.engagement_rate({"likes": 3, "reach": 0}) is None
    delta = stats_rules.change({"likes": 15, "reach": 180, "followers": 55, "engagement_rate": 0.2},
                               {"likes": 10, "reach": 0, "followers": None, "engagement_rate": 0.1})
    assert delta["likes"] == {"delta": 5, "pct": 50.0} and delta["reach"] == {"delta": 180, "pct": None}
    assert delta["followers"] is None and delta["engagement_rate"] == {"delta": 0.1, "pct": 100.0}


async def upload(api, deal: str, content: bytes, as_=None, name: str = "insights.csv"):
    headers = api.headers(as_ or ("manager1", "content_manager"))
    return await api.client.post(f"/api/content/deals/{deal}/stats/import", headers=headers,
                                 files={"file": (name, content, "text/csv")})


async def test_co7_csv_import_with_bad_rows_reupload_manual_entry_and_weekly_change(api_any) -> None:
    api = api_any
    deal = new_deal()
    await api.feed(period_opened(deal, 1, midnight(2026, 2, 23), midnight(2026, 3, 23), at=T0))
    first = await upload(api, deal, RU_CSV)
    assert first.status_code == 201, first.text
    job = first.json()
    assert (job["rows_total"], job["rows_ok"], job["rows_failed"]) == (6, 4, 2)
    assert [(e["row"], e["field"]) for e in job["errors"]] == [(5, "reach"), (7, "date")]
    again = await upload(api, deal, RU_CSV)
    assert again.status_code == 200 and again.json()["id"] == job["id"] and again.json()["repeated"]
    weeks = await api.ok("get", f"/deals/{deal}/stats?weeks=2&until=2026-03-02")
    assert [w["week_start"] for w in weeks] == ["2026-02-23", "2026-03-02"]
    assert (weeks[0]["reach"], weeks[0]["likes"], weeks[0]["followers"]) == (2500, 170, 2010)
    assert (weeks[1]["reach"], weeks[1]["likes"], weeks[1]["followers"]) == (3200, 210, 2075)
    assert weeks[1]["engagement_rate"] == round((210 + 19 + 12) / 3200, 4)
    assert weeks[1]["change"]["followers"] == {"delta": 65, "pct": 3.2}
    assert weeks[0]["change"]["likes"] is None  # no week before it
    # A corrected export (English headers, reach of 3 March now readable) replaces those days only.
    fixed = await upload(api, deal, b"Date,Reach,Likes\n2026-03-03,1 600,120\n", name="fix.csv")
    assert fixed.status_code == 201 and fixed.json()["columns"] == {"date": "Date", "reach": "Reach",
                                                                    "likes": "Likes"}
    week = (await api.ok("get", f"/deals/{deal}/stats?weeks=1&until=2026-03-08"))[0]
    assert (week["reach"], week["likes"], week["comments"]) == (4800, 330, 19)
    # Manual entry takes precedence for that week's figures it gives.
    manual = await api.ok("put", f"/deals/{deal}/stats/weeks/2026-03-02", {"followers": 2100, "saves": 20})
    assert manual["followers"] == 2100 and manual["saves"] == 20 and manual["reach"] == 4800
    assert manual["source"] == "manual"
    bad = await api.call("put", f"/deals/{deal}/stats/weeks/2026-03-03", {"likes": -1})
    assert bad.status_code == 422 and {e["field"] for e in bad.json()["errors"]} == {"week_start", "likes"}
    # Roles: another manager sees nothing, the analyst reads but does not upload; no file → 422 naming file.
    assert (await api.call("get", f"/deals/{deal}/stats", as_=OTHER)).status_code == 404
    assert len(await api.ok("get", f"/deals/{deal}/stats?weeks=3", as_=ANALYST)) == 3
    assert (await upload(api, deal, b"Date,Likes\n2026-03-02,1\n", as_=ANALYST)).status_code == 403
    none = await api.client.post(f"/api/content/deals/{deal}/stats/import", headers=api.headers(LEAD),
                                 files={"other": ("x.csv", b"a", "text/csv")})
    assert none.status_code == 422 and none.json()["errors"][0]["field"] == "file"
    no_date = await upload(api, deal, b"Reach,Likes\n1,2\n")
    assert no_date.status_code == 422 and no_date.json()["errors"][0]["field"] == "file"
    assert (await api.call("get", f"/deals/{deal}/stats?weeks=0")).status_code == 422


async def test_co7_weekly_report_shared_on_a_signed_link(api) -> None:
    from datetime import timedelta

    from .conftest import profile

    deal = new_deal()
    await api.feed(profile("client-1", "Айгерим", [deal], T0),
                   period_opened(deal, 1, midnight(2026, 2, 23), midnight(2026, 3, 23), at=T0))
    assert (await upload(api, deal, RU_CSV)).status_code == 201
    assert (await api.call("post", f"/deals/{deal}/stats/report-link?weeks=2", as_=ANALYST)).status_code == 403
    link = await api.ok("post", f"/deals/{deal}/stats/report-link?weeks=2&until=2026-03-02")
    assert link["url"] == f"https://zabota.example.kz/report/{link['token']}"
    report = await api.ok("get", f"/api/content/reports/{link['token']}", as_="public")
    assert report["client_name"] == "Айгерим" and [w["week_start"] for w in report["weeks"]] == ["2026-02-23",
                                                                                                 "2026-03-02"]
    assert (await api.call("get", f"/public/content/reports/{link['token']}x", as_="public")).status_code == 404
    api.clock.advance(timedelta(days=15))
    assert (await api.call("get", f"/api/content/reports/{link['token']}", as_="public")).status_code == 410
