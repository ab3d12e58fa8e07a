"""Issue 9 across two services: the content service's refusals and statistics rows travel as message codes,
and the gateway says them in each language (here, not in either service's tests: services never import each
other)."""

from __future__ import annotations

from content import stats_rules
from gateway import i18n
from gateway.messages import say_item

from shared import messages as M


def say(language: str, fn, *args):
    token = i18n.activate(language)
    try:
        return fn(*args)
    finally:
        i18n.deactivate(token)


def test_issue9_content_refusals_and_statistics_rows_come_as_codes_and_read_in_each_language() -> None:
    parsed = stats_rules.parse_csv("Дата;Лайки\n32.13.2026;12\n2026-03-02;много\n".encode())
    assert [(e["row"], e["code"]) for e in parsed.errors] == [(2, M.STATS_NOT_A_DATE), (3, M.STATS_NOT_WHOLE)]
    assert say("ru", say_item, parsed.errors[0]) == "«32.13.2026» — не дата (ГГГГ-ММ-ДД или ДД.ММ.ГГГГ)."
    assert say("zh", say_item, parsed.errors[1]) == "“много”不是整数。"
    locked = M.item("status", M.CONTENT_PLAN_LOCKED, state="in_approval")
    assert "in_approval" not in say("kk", say_item, locked) and say("kk", say_item, locked).endswith("(CO-4).")
    assert say("ru", say_item, M.item("published_at", M.CONTENT_PLAN_1_NOT_APPROVED)) == \
        "План 1 этого периода ещё не утверждён клиентом (CO-2)."
