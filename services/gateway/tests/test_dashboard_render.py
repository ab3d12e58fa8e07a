"""Issue 9 §1/§2: every dashboard kind renders in all four languages with people and dates as people read
them (template level; the page tests with a real clients service are in test_dashboard_pages.py)."""

from __future__ import annotations

import re
from types import SimpleNamespace as NS

import pytest
from gateway import i18n
from gateway.rendering import create_template_engine, month_name
from shared.testing import make_settings

TASK = {"id": "t1", "deal_id": "d1", "kind": "first_call", "client_name": "Гульнара Омарова", "assignee": "manager1",
        "due_at": "2026-11-19T06:00:00+00:00"}
DEADLINE = {"deal_id": "d1", "what_code": "first_call", "owner": "manager1", "due_at": "2026-11-19T06:00:00+00:00"}
STAGES = [{"stage": "new", "count": 2, "oldest": {"id": "d1", "client_name": "Гульнара Омарова",
                                                  "first_payment_at": "2026-11-10T06:00:00+00:00"}}]
CONTEXTS = {
    "manager": {"staff": NS(display_name="Дана", role="content_manager"), "clients_down": False, "risk": [DEADLINE],
                "buckets": {"overdue": [TASK], "today": [], "week": []}, "stages": STAGES,
                "deal_params": {"manager": "manager1"}},
    "lead": {"staff": NS(display_name="Алия", role="lead"), "clients_down": False, "letters": [("clients", 2)],
             "team_overdue": [("manager1", [TASK])], "breached_today": [("manager1", [DEADLINE])], "stages": STAGES,
             "month": "2026-11", "standing": [{"manager": "manager1", "renewals": 2, "compliance": "0.95"}],
             "payroll": {"total": "150000", "currency": "KZT", "state": "open", "best_manager": "manager1",
                         "tie": None}},
    "analyst": {"staff": NS(display_name="Ольга", role="analyst"), "month": "2026-11", "payroll_down": False,
                "funnel": {"steps": [{"step": "dialogs", "count": 3, "conversion_from_previous": None}]},
                "compliance": [{"manager": "manager1", "deadlines_met": 3, "deadlines_breached": 1,
                                "compliance": "0.75"}]},
    "coming": {"staff": NS(display_name="Асель", role="monitoring")},
    "care": {"staff": NS(display_name="Асель", role="care_agent"), "engagement_down": False,
             "counts": {"mine_open": 1, "mine_awaiting_answer": 1, "mine_waiting_client": 0, "unassigned": 2,
                        "mentions": 1},
             "mine": [{"id": "c1", "customer": {"name": "Anna", "handle": "@anna_k"},
                       "last_message": {"text": "<b>Где заказ?</b>", "at": "2026-11-19T06:00:00+00:00",
                                        "direction": "in"}}],
             "waiting": [], "unassigned": []},
}
EXPECTED = {  # one phrase per dashboard kind and language
    "ru": {"manager": "Просрочено", "lead": "Просроченные задачи команды", "analyst": "Воронка за ноябрь 2026",
           "coming": "Ваш раздел ещё создаётся.", "care": "Мои открытые разговоры"},
    "kk": {"manager": "Мерзімі өткен", "lead": "Команданың мерзімі өткен тапсырмалары", "analyst": "Қараша 2026",
           "coming": "Сіздің бөліміңіз әлі жасалуда.", "care": "Менің ашық әңгімелерім"},
    "en": {"manager": "Overdue", "lead": "Overdue tasks of the team", "analyst": "Funnel for November 2026",
           "coming": "Your workspace is being built.", "care": "My open conversations"},
    "zh": {"manager": "已逾期", "lead": "团队的逾期任务", "analyst": "2026年11月 漏斗", "coming": "您的工作区正在建设中。",
           "care": "我的未结会话"},
}


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.fixture(scope="module")
def env():
    i18n.load_all()
    settings = make_settings("gateway", database_url="sqlite+aiosqlite:///:memory:")
    return create_template_engine(settings.calendar).engine


@pytest.mark.parametrize("language", sorted(i18n.LANGUAGES))
@pytest.mark.parametrize("kind", sorted(CONTEXTS))
def test_issue9_dashboard_renders_each_kind_in_each_language(env, language: str, kind: str) -> None:
    token = i18n.activate(language)
    try:
        html = env.get_template("pages/dashboard.html").render(
            {"web": NS(language=language, csrf_token="x", staff=None), "nav": [], "request": None, "kind": kind,
             **CONTEXTS[kind]})
    finally:
        i18n.deactivate(token)
    text = text_of(html)
    assert EXPECTED[language][kind] in text
    if kind == "care":   # the customer's text escaped, the time in the agency's zone
        assert "&lt;b&gt;Где заказ?" in html and "19.11.2026 11:00" in text and 'href="/inbox/c1"' in html
    if kind in ("manager", "lead"):
        assert "19.11.2026 11:00" in text and 'href="/deals/d1' in html     # agency time, DD.MM.YYYY; links
    if language != "en":
        assert "Overdue" not in text and "Nothing needs your attention" not in text


def test_issue9_month_names_in_each_language() -> None:
    expected = {"ru": "Ноябрь 2026", "kk": "Қараша 2026", "en": "November 2026", "zh": "2026年11月"}
    for language, name in expected.items():
        token = i18n.activate(language)
        try:
            assert month_name("2026-11") == name
            # Inside a sentence Russian and Kazakh write the month in lower case ("Зарплата за ноябрь 2026").
            in_text = name.lower() if language in ("ru", "kk") else name
            assert month_name("2026-11", in_text=True) == in_text
        finally:
            i18n.deactivate(token)
