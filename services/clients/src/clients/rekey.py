"""Re-encrypt every secret the clients service stores with the newest encryption key (issue 8 item 6).

    ZABOTA_ENCRYPTION_KEYS=<new>,<old> uv run python -m clients.rekey

Rotation: put the new key first in ZABOTA_ENCRYPTION_KEYS (old ones after it, so they still decrypt),
restart the services, run this command, then remove the old keys. It rewrites the CL-8 credentials of
every deal and the encrypted secret columns of imports not yet finished (clients/imports.py), in batches
of one transaction each, and prints what it did. Running it twice is harmless. Data written before the
keys had their own setting (derived from ZABOTA_SECRET_KEY) is re-encrypted the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from shared.db import Database
from shared.settings import Settings
from sqlalchemy import select

from clients import crypto
from clients.imports import SECRET_MARK
from clients.models import Deal, Import

BATCH = 200


async def rekey(db: Database, settings: Settings) -> dict[str, int]:
    """Re-encrypt what is stored with `settings.encryption_keys[0]`; counts of rewritten rows."""
    counts = {"credentials": 0, "import_rows": 0}
    last = ""
    while True:
        async with db.transaction() as session:
            deals = list((await session.execute(
                select(Deal).where(Deal.credentials.is_not(None), Deal.id > last).order_by(Deal.id).limit(BATCH)
            )).scalars())
            for deal in deals:
                deal.credentials = crypto.rotate(settings, deal.credentials)
                counts["credentials"] += 1
        if len(deals) < BATCH:
            break
        last = deals[-1].id
    async with db.transaction() as session:
        for job in (await session.execute(select(Import).order_by(Import.id))).scalars():
            if not any(row.get(SECRET_MARK) for row in job.rows):
                continue
            rows = []
            for row in job.rows:
                if row.get(SECRET_MARK):
                    row = {**row, SECRET_MARK: crypto.rotate(settings, row[SECRET_MARK].encode()).decode("ascii")}
                    counts["import_rows"] += 1
                rows.append(row)
            job.rows = rows
    return counts


async def _main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(prog="python -m clients.rekey", description=__doc__.split("\n\n")[0]).parse_args(argv)
    settings = Settings.from_env("clients")
    db = Database(settings.database_url)
    try:
        counts = await rekey(db, settings)
    finally:
        await db.dispose()
    print(json.dumps({"re_encrypted": counts}))
    return 0


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(_main(argv))


if __name__ == "__main__":
    sys.exit(main())
