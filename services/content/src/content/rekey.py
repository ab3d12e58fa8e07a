"""Re-encrypt the Instagram access tokens with the newest key (issue 8 item 6):

    ZABOTA_ENCRYPTION_KEYS=<new>,<old> uv run python -m content.rekey
"""

from __future__ import annotations

import sys

from shared.db import Database
from shared.rekey import rotate_column, run
from shared.settings import Settings

from content import crypto
from content.models import InstagramAccount


async def rekey(db: Database, settings: Settings) -> dict[str, int]:
    tokens = await rotate_column(db, InstagramAccount, InstagramAccount.deal_id, "token_enc",
                                 lambda blob: crypto.rotate(settings, blob))
    return {"instagram_tokens": tokens}


if __name__ == "__main__":
    sys.exit(run("content", rekey))
