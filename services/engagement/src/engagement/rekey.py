"""Re-encrypt the channel accounts' secrets with the newest key (issue 8 item 6):

    ZABOTA_ENCRYPTION_KEYS=<new>,<old> uv run python -m engagement.rekey
"""

from __future__ import annotations

import sys

from shared.db import Database
from shared.rekey import rotate_column, run
from shared.settings import Settings

from engagement.crypto import LEGACY
from engagement.models import Channel
from shared import crypto


async def rekey(db: Database, settings: Settings) -> dict[str, int]:
    channels = await rotate_column(db, Channel, Channel.id, "secrets",
                                   lambda blob: crypto.rotate(settings, blob, LEGACY))
    return {"channel_secrets": channels}


if __name__ == "__main__":
    sys.exit(run("engagement", rekey))
