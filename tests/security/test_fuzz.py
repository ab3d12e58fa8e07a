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
ACTORS = {"lead": lambda: staff_headers("lead", "lead"), "integration": integration_headers}


@pytest.mark.parametrize("service", ["clients", "content", "engagement", "payroll"])
def test_issue8_10_schema_fuzzing_finds_no_server_error(fresh_stack: Stack, service: str) -> None:
    errors: list[str] = []
    for actor, headers in ACTORS.items():
        result = fuzz_service(fresh_stack.urls[service], service, actor, headers(), EXAMPLES)
        record(f"schemathesis {service} as {actor} ({EXAMPLES}/operation)", result.tried,
               result.tried - len(result.server_errors), f"5xx: {len(result.server_errors)}")
        assert result.tried > 0, result.skipped
        errors += result.server_errors
    assert not errors, "\n".join(errors[:30])
