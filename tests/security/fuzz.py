"""Schema-driven fuzzing of the services' OpenAPI with schemathesis (issue 8 §10 and the suite).

Every operation of a service's `/schema/openapi.json` gets `max_examples` generated requests (valid and
invalid by the schema), sent as the given actor; the answer must never be a server error (5xx).
Used by tests/security/test_fuzz.py (a bounded run in CI) and bench/security_fuzz.py (a long run).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings


@dataclass
class FuzzResult:
    service: str
    actor: str
    tried: int = 0
    server_errors: list[str] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    skipped: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (f"{self.service:<11} as {self.actor:<12} tried {self.tried:>6}  5xx {len(self.server_errors):>4}  "
                f"in {self.seconds:.1f}s")


def fuzz_service(base_url: str, service: str, actor: str, headers: dict[str, str], max_examples: int,
                 seed: int = 8) -> FuzzResult:
    result = FuzzResult(service, actor)
    started = time.monotonic()
    schema = schemathesis.openapi.from_url(f"{base_url}/schema/openapi.json")
    for outcome in schema.get_all_operations():
        operation = outcome.ok()
        if operation is None:
            result.skipped.append(str(outcome.err()))
            continue

        @settings(max_examples=max_examples, deadline=None, database=None, derandomize=True,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
                  print_blob=False)
        @given(case=operation.as_strategy())
        def run(case) -> None:
            body = "" if type(case.body).__name__ == "NotSet" else f" body={str(case.body)[:200]!r}"
            result.tried += 1
            try:
                response = case.call(base_url=base_url, headers=headers, timeout=30)
            except Exception as exc:   # no answer at all (timeout, connection reset) counts as a server error
                result.server_errors.append(f"{case.method} {case.formatted_path} -> {type(exc).__name__}"
                                            f" query={case.query}{body}")
                return
            result.statuses[response.status_code] += 1
            if response.status_code >= 500:
                result.server_errors.append(f"{case.method} {case.formatted_path} -> {response.status_code} "
                                            f"query={case.query}{body}")

        try:
            run()
        except Exception as exc:   # a generation problem of one operation must not hide the others
            result.skipped.append(f"{operation.label}: {type(exc).__name__}: {str(exc)[:200]}")
    result.seconds = time.monotonic() - started
    return result
