"""In a real browser: sign in through the login form, and a wrong password shows the error."""

from __future__ import annotations

import pytest
from gateway.app import create_app
from shared.testing import page_true

from .conftest import gateway_settings

pytestmark = pytest.mark.browser


async def test_manager_signs_in_through_the_form_and_sees_the_dashboard(browser_page, live_server,
                                                                        tmp_path) -> None:
    app = create_app(gateway_settings(f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}"))
    base_url = live_server(app)
    page = browser_page

    await page.goto(base_url + "/")
    assert page.url.startswith(base_url + "/login")   # anonymous: sent to sign in
    await page_true(page, "window.htmx !== undefined")

    await page.fill("input[name=login]", "manager1")
    await page.fill("input[name=password]", "wrong")
    await page.click("button[type=submit]")
    error = page.locator("#login-form .alert.error")
    await error.wait_for()
    assert (await error.inner_text()).strip() == "Неверный логин или пароль."
    assert page.url.startswith(base_url + "/login")

    await page.fill("input[name=password]", "demo")
    await page.click("button[type=submit]")
    await page.wait_for_url(base_url + "/")
    assert "Здравствуйте, Дана Ахметова!" in await page.locator("h1").inner_text()
    assert await page.locator(".whoami").inner_text() == "Дана Ахметова Контент-менеджер"
    # A content manager's menu has no lead-only pages (staff, status, import).
    assert await page.locator(".mainnav a").all_inner_texts() == [
        "Главная", "Мои задачи", "Мои рассылки", "Воронка сделок", "Клиенты", "Лиды", "Воронка продаж", "Входящие", "Контент",
        "Регулярность", "Проверки", "Зарплата", "Правила оплаты", "Каталог событий"]

    await page.click("text=Выйти")
    await page.wait_for_url(base_url + "/login")

    # A care agent's menu: the inbox (issue 11); templates and channel accounts are for senior agents / the lead.
    await page.fill("input[name=login]", "agent1")
    await page.fill("input[name=password]", "demo")
    await page.click("button[type=submit]")
    await page.wait_for_url(base_url + "/")
    assert await page.locator(".mainnav a").all_inner_texts() == ["Главная", "Мои рассылки", "Входящие",
                                                                   "Отчёт поддержки", "Каталог событий"]
    await page.click("text=Выйти")
    await page.wait_for_url(base_url + "/login")

async def test_issue11_monitoring_staff_menu_has_the_mentions_and_their_sources(browser_page, live_server,
                                                                               tmp_path) -> None:
    from shared.db import Database

    from .conftest import add_role_accounts, password_of

    settings = gateway_settings(f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}")
    base_url = live_server(create_app(settings))
    db = Database(settings.database_url)
    try:
        await add_role_accounts(db)
    finally:
        await db.dispose()
    page = browser_page
    await page.goto(base_url + "/login")
    await page.fill("input[name=login]", "monitor1")
    await page.fill("input[name=password]", password_of("monitor1"))
    await page.click("button[type=submit]")
    await page.wait_for_url(base_url + "/")
    assert await page.locator(".mainnav a").all_inner_texts() == [
        "Главная", "Входящие", "Упоминания", "Источники мониторинга", "Каталог событий"]
    # The engagement service is not running here: the dashboard says so instead of failing.
    assert "сервис обращений не отвечает" in await page.locator("main").inner_text()
