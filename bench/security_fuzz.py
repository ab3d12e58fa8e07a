"""Long schema-driven fuzz run (issue 8 §10): schemathesis against each service's OpenAPI, 0 server errors.

    uv run python bench/security_fuzz.py [--examples 200] [--services clients,payroll]

Starts the stack the security suite uses (tests/security/stack.py: a real nats-server, the four services
and the gateway as processes on free ports, SQLite files in a temporary directory, every secret set), then
sends `--examples` generated requests per operation as the project lead and as an integration, and prints
per service and actor how many requests were tried and how many answered 5xx (with the first of them).
The CI run of the same check is tests/security/test_fuzz.py with a handful of examples per operation.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.security.fuzz import fuzz_service  # noqa: E402
from tests.security.identity import integration_headers, staff_headers  # noqa: E402
from tests.security.stack import SERVICES, Stack  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=200, help="generated requests per operation and actor")
    parser.add_argument("--services", default=",".join(SERVICES))
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="zabota-fuzz-") as tmp:
        stack = Stack(Path(tmp)).start()
        try:
            print(f"stack up in {time.monotonic() - started:.1f}s; {args.examples} examples per operation and actor")
            total = errors = 0
            for service in args.services.split(","):
                actors = {"lead": staff_headers("lead", "lead", service), "integration": integration_headers()}
                for actor, headers in actors.items():
                    result = fuzz_service(stack.urls[service], service, actor, headers, args.examples)
                    total += result.tried
                    errors += len(result.server_errors)
                    print(result.line(), flush=True)
                    for line in result.server_errors[:10]:
                        print("   5xx:", line)
                    for line in result.skipped[:5]:
                        print("   skipped:", line)
        finally:
            stack.stop()
    print(f"total: tried {total}, 5xx {errors}, {time.monotonic() - started:.0f}s "
          "(method: schemathesis generation from each service's live /schema/openapi.json, derandomized; "
          "one request at a time)")
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
