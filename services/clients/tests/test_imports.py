"""amoCRM CSV import (imports.py): 202 at once, processed in the background row by row; a bad row is
skipped with its errors and changes nothing; re-importing the same file duplicates nothing."""

from __future__ import annotations

from .conftest import local, payment

HEADER = ("ID;Название сделки;Бюджет;Ответственный;Этап сделки;Дата создания;Дата оплаты;Контакт: ФИО;"
          "Контакт: Телефон;Контакт: Email;Контакт: Instagram;Тип услуги;Тип плательщика;Компания;БИН;"
          "Дата начала обслуживания;Логин Instagram;Пароль Instagram\n")
ROWS = [
    ("101;Кондитерская;60 000;manager2;Оплачено;01.03.2026 10:00:00;01.03.2026 10:05:00;Айгерим;+77010000101;"
    "a@example.kz;@cakes;Ведение аккаунта;Физ. лицо;;;;;\n"),
    ("102;Фитнес;90000;;Проект запущен;15.02.2026 12:00:00;15.02.2026 12:00:00;Данияр;+77010000102;;@fit;"
    "Комплексное продвижение;Юр. лицо;ТОО Фит;123456789012;16.02.2026;fit.kz;pw\n"),
    "103;Без даты;60000;;Оплачено;;;Нурлан;+77010000103;;;Ведение аккаунта;;;;;;\n",             # no date
    ("104;Запущен без пароля;60000;;Проект запущен;01.03.2026 11:00;01.03.2026 11:00;Ольга;+77010000104;;;"
    "Ведение аккаунта;;;;01.03.2026;olga;\n"),                                                     # no password
    ("105;Связались;50000;;Связались с клиентом;02.03.2026 09:00;02.03.2026 09:00;Асель;+77010000105;;;"
    "Ведение аккаунта;;;;;;\n"),
]


async def upload(api, text: str):
    return await api.client.post("/api/clients/imports", headers=api.headers(("boss", "lead")),
                                 files={"file": ("amocrm_deals.csv", text.encode(), "text/csv")})


async def test_import_runs_in_the_background_row_by_row_and_reports_errors(api) -> None:
    api.clock.set(local(2026, 3, 2, 12, 0))
    started = await upload(api, HEADER + "".join(ROWS))
    assert started.status_code == 202, started.text
    job = started.json()
    assert job["total"] == 5 and job["processed"] == 0
    await api.run_due()
    done = await api.ok("get", f"/imports/{job['id']}")
    assert done["status"] == "done" and done["processed"] == 5 and done["imported"] == 3
    errors = {(e["row"], e["field"]) for e in done["errors"]}
    assert errors == {(4, "Дата оплаты"), (5, "Пароль Instagram")}
    deals = {d["responsible_manager"]: d for d in await api.ok("get", "/deals")}
    assert len(await api.ok("get", "/deals")) == 3  # the bad rows changed nothing
    assert deals["manager2"]["stage"] == "new"
    launched = [d for d in await api.ok("get", "/deals") if d["stage"] == "project_launched"]
    assert launched and launched[0]["service_kind"] == "complex_promotion"
    contacted = next(d for d in await api.ok("get", "/deals") if d["stage"] == "contacted")
    first_call = (await api.deal(contacted["id"]))["deadlines"][0]
    assert first_call["state"] == "waived" and "imported" in first_call["reason"]  # unknown history: no fine

    again = await upload(api, HEADER + "".join(ROWS))
    await api.run_due()
    assert (await api.ok("get", f"/imports/{again.json()['id']}"))["imported"] == 3
    assert len(await api.ok("get", "/deals")) == 3  # idempotent on the amoCRM ID


async def test_import_rejects_a_file_that_is_not_an_amocrm_export(api) -> None:
    response = await upload(api, "name,phone\nx,1\n")
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "file"
    assert (await api.client.post("/api/clients/imports", headers=api.headers(("manager1", "content_manager")),
                                  files={"file": ("a.csv", HEADER.encode(), "text/csv")})).status_code == 403


async def test_attachment_over_50_mb_is_422(api) -> None:
    deal = await api.pay(payment("big"))
    big = b"\0" * (50 * 1024 * 1024 + 1)
    response = await api.client.post(f"/api/clients/deals/{deal['deal_id']}/attachments", headers=api.headers(None),
                                     files={"file": ("call.wav", big, "audio/wav")})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "file"
    assert (await api.deal(deal["deal_id"]))["attachments"] == []
