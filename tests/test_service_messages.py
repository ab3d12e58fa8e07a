"""Issue 9 across two services: the content service's refusals and statistics rows travel as message codes,
and the gateway says them in each language (here, not in either service's tests: services never import each
other)."""

from __future__ import annotations

import pytest
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


def test_issue9_payroll_rule_set_refusals_come_as_codes_and_read_in_each_language() -> None:
    from payroll.rules import validate_rules
    from shared.errors import DomainError

    with pytest.raises(DomainError) as refused:
        validate_rules("tenge", {"PAY-1": "150000", "PAY-2": "-5", "PAY-3": 1.5, "PAY-4": "0", "PAY-5": "0",
                                 "PAY-7": "0", "PAY-9": "1"}, {"CL-3": "abc"}, "0", ["renewals", "luck"])
    items = {item["field"]: item for item in refused.value.errors}
    assert {field: item["code"] for field, item in items.items()} == {
        "currency": M.RULES_CURRENCY, "amounts.PAY-2": M.RULES_BONUS_SIGN, "amounts.PAY-3": M.PAYROLL_AMOUNT_FLOAT,
        "amounts.PAY-9": M.RULES_UNKNOWN_RULE, "deadline_fines.CL-3": M.PAYROLL_AMOUNT_NOT_DECIMAL,
        "best_manager_rule": M.RULES_UNKNOWN_CRITERION}
    # API clients read the same English as before the codes.
    assert items["deadline_fines.CL-3"]["message"] == "deadline_fines.CL-3 is not a decimal number: 'abc'"
    assert say("ru", say_item, items["amounts.PAY-2"]) == "Премия — 0 или больше."
    assert say("kk", say_item, items["currency"]) == "Валюта — KZT сияқты үш әріпті код."
    assert say("zh", say_item, items["best_manager_rule"]) == "未知标准：请从列表中选择。"
    closed = M.item("effective_from", M.RULES_MONTH_CLOSED, month="2026-02")
    assert closed["message"] == "2026-02 is closed: rules of a closed month never change"
    assert say("ru", say_item, closed) == "Февраль 2026 закрыт: правила закрытого месяца не меняются."


def test_issue9_clients_payment_and_checklist_refusals_read_in_each_language() -> None:
    from types import SimpleNamespace

    from clients.services.tasks import require_checklist_done
    from shared.errors import DomainError

    reused = M.item("amount", M.PAYMENT_RECORDED_AMOUNT, amount="60000.00")   # a repeated external_id (issue 7 §4)
    assert reused["message"] == "this payment was recorded with 60000.00"
    assert say("ru", say_item, reused) == "Этот платёж записан с суммой 60000.00."
    assert say("zh", say_item, M.item("refunded_at", M.REFUND_RECORDED_AT)) == "该退款记录的时间不同。"
    task = SimpleNamespace(kind="account_setup", checklist=[{"item": "avatar", "done": True},
                                                            {"item": "WhatsApp link", "done": False}])
    with pytest.raises(DomainError) as refused:
        require_checklist_done(task)
    [missing] = refused.value.errors
    assert (missing["code"], missing["message"]) == (M.CHECKLIST_NOT_TICKED, "WhatsApp link")
    assert say("ru", say_item, missing) == "Пункт «Ссылка на WhatsApp» ещё не отмечен."
