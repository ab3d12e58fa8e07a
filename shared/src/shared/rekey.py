"""Re-encrypt one encrypted column with the newest key (issue 8 item 6), for a service's re-key command.

Rotation: put the new key first in ZABOTA_ENCRYPTION_KEYS (old ones after it, so they still decrypt),
restart the services, run each service's `python -m <service>.rekey`, then remove the old keys. Rows are
rewritten in batches of one transaction each, in primary-key order; running it twice is harmless.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from shared.db import Database
from shared.settings import Settings

BATCH = 200


async def rotate_column(db: Database, model: Any, key: Any, column: str,
                        rotate: Callable[[bytes], bytes]) -> int:
    """Rewrite `model.column` (bytes) of every row with `rotate`; returns how many rows were rewritten."""
    done, last = 0, None
    while True:
        async with db.transaction() as session:
            query = select(model).where(getattr(model, column).is_not(None)).order_by(key).limit(BATCH)
            if last is not None:
                query = query.where(key > last)
            rows = list((await session.execute(query)).scalars())
            for row in rows:
                setattr(row, column, rotate(getattr(row, column)))
            done += len(rows)
        if len(rows) < BATCH:
            return done
        last = getattr(rows[-1], key.key)


def run(service: str, job: Callable[[Database, Settings], Any]) -> int:
    """Run a service's re-key `job(db, settings)` against its database; prints the counts as JSON."""

    async def main() -> int:
        settings = Settings.from_env(service)
        db = Database(settings.database_url)
        try:
            counts = await job(db, settings)
        finally:
            await db.dispose()
        print(json.dumps({"re_encrypted": counts}))
        return 0

    return asyncio.run(main())
