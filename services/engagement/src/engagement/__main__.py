"""`python -m engagement`: the service under uvicorn (as `shared.service.serve` does), behind the webhook front,
with `ENGAGEMENT_WORKERS` processes.

`ENGAGEMENT_WORKERS` (default on PostgreSQL: half the cores, at least 1, at most 4 — the rest is for the
database and the other services, measured in bench/engagement_ingest.py: on 2 cores with PostgreSQL beside it
1 worker ingests ~2× what 2 do; on SQLite 1, whose one writer gains nothing from more): each worker is a full replica — its own group-commit writer, processor and
sender; they share the work through `FOR UPDATE SKIP LOCKED` and migrate in turn (an advisory lock).
uvloop and httptools are used when installed (uvicorn[standard]). On PostgreSQL each worker's inbound
processor is a child process of its own (engagement.processor_process).
"""

import os
import sys

from shared.db import is_sqlite
from shared.settings import InsecureSettings, Settings, check_secrets
from shared.telemetry import setup_logging


def workers(settings: Settings, environ: dict[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    if env.get("ENGAGEMENT_WORKERS"):
        return max(1, int(env["ENGAGEMENT_WORKERS"]))
    return 1 if is_sqlite(settings.database_url) else max(1, min((os.cpu_count() or 1) // 2, 4))


def main() -> None:
    import uvicorn

    settings = Settings.from_env("engagement")
    setup_logging("engagement")
    try:
        check_secrets(settings)   # issue 8 item 6: no default or short secret outside demo mode
    except InsecureSettings as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None
    uvicorn.run("engagement.app:create_asgi", factory=True, host=settings.host, port=settings.port,
                log_config=None, timeout_graceful_shutdown=10, access_log=False, workers=workers(settings),
                loop="auto", http="auto")


if __name__ == "__main__":
    main()
