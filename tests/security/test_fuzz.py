"""schemathesis against each service's OpenAPI (issue 8 §10; the suite): 0 server errors.

A bounded run for CI: `ZABOTA_FUZZ_EXAMPLES` generated requests per operation (default 6), as the
project lead (through the identity helper) and as an integration, on a stack of its own (the fuzzer writes
whatever the schema allows). The long run is `uv run python bench/security_fuzz.py`.
"""

from __future__ import annotations

import os

import pytest

from .figures import record
from .fuzz import fuzz_service
from .identity import integration_headers, staff_headers
from .stack import Stack

EXAMPLES = int(os.environ.get("ZABOTA_FUZZ_EXAMPLES", "6"))
ACTORS = {"lead": lambda service: staff_headers("lead", "lead", service),
          "integration": lambda _service: integration_headers()}


@pytest.mark.parametrize("service", ["clients", "content", "engagement", "payroll"])
def test_issue8_10_schema_fuzzing_finds_no_server_error(fresh_stack: Stack, service: str) -> None:
    errors: list[str] = []
    for actor, headers in ACTORS.items():
        result = fuzz_service(fresh_stack.urls[service], service, actor, headers(service), EXAMPLES)
        record(f"schemathesis {service} as {actor} ({EXAMPLES}/operation)", result.tried,
               result.tried - len(result.server_errors), f"5xx: {len(result.server_errors)}")
        assert result.tried > 0, result.skipped
        errors += result.server_errors
    assert not errors, "\n".join(errors[:30])


HUGE = 10**30
# Issue 8 §10, the server errors the probe found, written out so the bounded CI run always tries them:
# amounts with too many digits, unbounded offsets and pages, ids that overflow a database integer.
EDGES = [
    ("clients", "POST", "/payments", {"json": {"external_id": "edge-amount", "paid_at": "2026-01-05T10:00:00+00:00",
                                               "amount": "9" * 40 + ".00", "currency": "KZT",
                                               "service_kind": "account_management",
                                               "client": {"full_name": "Edge", "phone": "+77010007777",
                                                          "payer_type": "individual"}}}),
    ("clients", "POST", "/payments", {"json": {"external_id": "edge-amount-2", "paid_at": "2026-01-05T10:00:00+00:00",
                                               "amount": "1e999999", "currency": "KZT",
                                               "service_kind": "account_management",
                                               "client": {"full_name": "Edge", "phone": "+77010007778",
                                                          "payer_type": "individual"}}}),
    ("clients", "GET", "/deals", {"params": {"offset": str(HUGE)}}),
    ("clients", "GET", "/deals", {"params": {"limit": str(HUGE)}}),
    ("clients", "GET", "/leads", {"params": {"offset": str(HUGE)}}),
    ("clients", "GET", "/leads", {"params": {"offset": str(-HUGE)}}),
    ("clients", "GET", "/audit", {"params": {"limit": str(HUGE)}}),
    ("payroll", "GET", "/statements/manager1", {"params": {"month": "2026-01", "page": str(HUGE)}}),
    ("payroll", "GET", "/statements/manager1", {"params": {"month": "9999-12", "page_size": "1"}}),
    *[(service, "POST", f"/ops/dead-letters/{n}/replay", {}) for service in ("clients", "content", "engagement",
                                                                                 "payroll") for n in (HUGE, -HUGE)],
    ("clients", "GET", "/ops/dead-letters", {"params": {"limit": str(HUGE)}}),
]


def test_issue8_10_the_known_fuzzing_server_errors_are_client_errors(fresh_stack: Stack) -> None:
    import httpx

    problems = []
    for service, method, path, kwargs in EDGES:
        response = httpx.request(method, f"{fresh_stack.urls[service]}/api/{service}{path}",
                                 headers=staff_headers("lead", "lead", service), timeout=30, **kwargs)
        if response.status_code >= 500:
            problems.append(f"{method} {service}{path} {kwargs.get('params', '')} -> {response.status_code}")
    record("fuzzing edges of issue 8 §10 (amounts, offsets, ids)", len(EDGES), len(EDGES) - len(problems),
           f"5xx: {len(problems)}")
    assert not problems, problems
