"""Issue 8 item 6: channel secrets follow ZABOTA_ENCRYPTION_KEYS; `python -m engagement.rekey` re-encrypts them."""

from __future__ import annotations

from dataclasses import replace

import pytest
from engagement.crypto import decrypt_secrets
from engagement.models import Channel
from engagement.rekey import rekey

from .payloads import TG_CONFIG

NEW_KEY = "a-brand-new-encryption-key-0123456789abcdef"


async def test_issue8_6_rekey_reencrypts_channel_secrets_with_the_newest_key(api_any) -> None:
    api = api_any
    await api.channel("telegram", TG_CONFIG)
    old = api.app.state.settings
    rotated = replace(old, encryption_keys=(NEW_KEY, *old.encryption_keys))
    counts = api.in_app(rekey, api.runtime.db, rotated)
    assert counts == {"channel_secrets": 1}
    [row] = await api.rows(Channel)
    only_new = replace(old, encryption_keys=(NEW_KEY,))
    assert decrypt_secrets(only_new, row.secrets)["bot_token"] == TG_CONFIG["bot_token"]
    with pytest.raises(ValueError):   # the old key alone no longer reads it
        decrypt_secrets(replace(old, secret_key="another-secret-key-entirely-000000"), row.secrets)
