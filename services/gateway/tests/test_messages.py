"""Issue 9: services answer with message codes + parameters and the gateway says them in the user's language.
A code a service may send without a translation in one of the four catalogues fails here."""

from __future__ import annotations

import re

import pytest
from babel.messages.pofile import read_po
from gateway import i18n
from gateway.labels import field_name
from gateway.messages import MESSAGES, line_note, say_item

from shared import messages as M


def catalogue(language: str) -> dict[str, str]:
    with open(i18n.LOCALE_DIR / language / "LC_MESSAGES" / "messages.po", "rb") as po:
        return {m.id: m.string for m in read_po(po) if isinstance(m.id, str) and m.string and not m.fuzzy}


def test_issue9_every_service_message_code_has_a_gateway_text() -> None:
    assert set(M.CODES) - set(MESSAGES) == set(), "codes the gateway cannot say"
    for code, english in M.CODES.items():
        # The gateway's text uses only parameters the service sends (it may leave out an internal word, such as
        # a plan's state, that the sentence says in its own way).
        sent, used = set(re.findall(r"%\((\w+)\)[sr]", english)), set(re.findall(r"%\((\w+)\)s", MESSAGES[code]))
        assert used <= sent, code


@pytest.mark.parametrize("language", sorted(i18n.LANGUAGES))
def test_issue9_every_service_message_code_is_translated(language: str) -> None:
    translated = catalogue(language)
    missing = sorted(code for code, msgid in MESSAGES.items() if msgid not in translated)
    assert not missing, f"message codes without a {language} translation: {missing}"


def say(language: str, fn, *args):
    token = i18n.activate(language)
    try:
        return fn(*args)
    finally:
        i18n.deactivate(token)


def test_issue9_statement_lines_import_errors_and_refusals_in_each_language() -> None:
    base = {"rule": "PAY-1", "note": "base salary 2026-11", "note_code": M.LINE_BASE_SALARY,
            "note_params": {"month": "2026-11"}}
    assert say("ru", line_note, base) == "Оклад за ноябрь 2026"
    assert say("zh", line_note, base) == "2026年11月 基本工资"
    assert say("kk", line_note, base) == "Қараша 2026 айлықақы"   # a sentence that begins with the month
    breach = {"rule": "PAY-6", "note": "deadline CL-3 breached (first_call)", "note_code": M.LINE_DEADLINE,
              "note_params": {"rule": "CL-3"}}
    assert say("kk", line_note, breach) == "CL-3 мерзімі бұзылды"
    assert say("en", line_note, breach) == "Deadline CL-3 breached"
    row = {"row": 3, "field": "Этап сделки", "message": "unknown stage 'Думает'", "code": M.IMPORT_UNKNOWN_STAGE,
           "params": {"value": "Думает"}}
    assert say("ru", say_item, row) == "Неизвестный этап «Думает»."
    assert say("zh", say_item, {"field": "client.phone", "message": "required"}) == "必填。"
    assert say("ru", field_name, "client.phone") == "Телефон"
    refusal = M.item("month", M.MONTH_NOT_ENDED, month="2026-12")
    assert say("ru", say_item, refusal).startswith("Декабрь 2026 ещё не закончился")
    assert say("en", say_item, {"message": "free text a person wrote"}) == "free text a person wrote"

