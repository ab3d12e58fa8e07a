"""Issue 9: statement lines carry a message code + parameters (the gateway says them in the reader's language);
the English `note` stays for the CSV and the API."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from payroll.services import note_code

from shared import messages as M

AT = datetime(2026, 11, 30, 19, 0, tzinfo=UTC)


def test_issue9_each_kind_of_line_has_its_code_and_parameters() -> None:
    assert note_code({"rule": "PAY-1", "month": "2026-12", "occurred_at": AT}) == {
        "note_code": M.LINE_BASE_SALARY, "note_params": {"month": "2026-12"}}   # the line's month, not UTC's
    assert note_code({"rule": "PAY-6", "deadline_rule": "CL-3", "note": "deadline CL-3 breached (first_call)",
                      "occurred_at": AT}) == {"note_code": M.LINE_DEADLINE, "note_params": {"rule": "CL-3"}}
    waived = note_code({"rule": "PAY-6", "corrects_line_id": 7, "occurred_at": AT,
                        "note": "adjustment for 2026-10 (closed): reverses line 7 — deadline CL-3 waived by lead: "
                                "клиент в больнице"})
    assert waived == {"note_code": M.LINE_REVERSAL_WAIVED,
                      "note_params": {"line": 7, "rule": "CL-3", "by": "lead", "reason": "клиент в больнице"}}
    assert note_code({"rule": "PAY-2", "occurred_at": AT})["note_code"] == M.LINE_RENEWAL
    for code, english in M.CODES.items():
        assert M.text(code, **dict.fromkeys(re.findall(r"%\((\w+)\)[sr]", english), "x"))
