"""Issue 8 item 10 in payroll: fuzzed numbers (amounts with too many digits, unbounded pages, overflowing ids)
are a 4xx naming the field, never a 500."""

from __future__ import annotations


async def test_issue8_10_payroll_rule_amounts_with_too_many_digits_are_422(payroll) -> None:
    for amount in ("1" * 40, "1e999999", "-" + "9" * 13, "1E+30"):
        response = await payroll.put("/rules", {"effective_from": "2026-04", "deadline_fines": {"CL-9": amount}})
        assert response.status_code == 422, (amount, response.text)
        assert response.json()["errors"][0]["field"] == "deadline_fines.CL-9"
    ok = await payroll.put("/rules", {"effective_from": "2026-04", "deadline_fines": {"CL-9": "-999999999999.99"}})
    assert ok.status_code == 200, ok.text


async def test_issue8_10_payroll_unbounded_page_and_overflowing_ids_are_4xx(payroll) -> None:
    for page in (2**62, 2**64, 10**30):
        response = await payroll.get("/statements/anna", month="2026-04", page=page)
        assert response.status_code == 422 and response.json()["errors"][0]["field"] == "page", response.text
    for bad in (str(2**63), "9" * 40):
        replay = await payroll.post(f"/ops/dead-letters/{bad}/replay")
        assert replay.status_code in (400, 404, 422), replay.text
