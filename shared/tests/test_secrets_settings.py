"""Issue 8 item 6: outside demo mode a service refuses to start with a default or short secret, and says which."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pytest
from shared.settings import DEFAULT_SECRETS, InsecureSettings, Settings, check_secrets, insecure_secrets

STRONG = {
    "ZABOTA_API_TOKEN": "gateway:" + "g" * 40 + ",partner:" + "p" * 40,
    "ZABOTA_WEBHOOK_SECRET": "w" * 40,
    "ZABOTA_SECRET_KEY": "s" * 40,
    "ZABOTA_GATEWAY_SECRET": "a" * 40,
    "ZABOTA_ENCRYPTION_KEYS": "n" * 40 + "," + "o" * 40,
}


def test_issue8_6_defaults_are_refused_outside_demo_and_each_is_named() -> None:
    settings = Settings.from_env("clients", {})
    assert not settings.demo
    with pytest.raises(InsecureSettings) as refused:
        check_secrets(settings)
    message = str(refused.value)
    for name in DEFAULT_SECRETS:
        assert name in message
    assert "built-in default" in message and "ZABOTA_DEMO=1" in message


def test_issue8_6_demo_mode_accepts_the_development_defaults() -> None:
    check_secrets(Settings.from_env("clients", {"ZABOTA_DEMO": "1"}))


def test_issue8_6_short_secrets_are_refused_and_strong_ones_accepted() -> None:
    strong = Settings.from_env("clients", STRONG)
    check_secrets(strong)
    assert strong.encryption_keys == ("n" * 40, "o" * 40)
    short = replace(strong, webhook_secret="x" * 31, api_token="gateway:" + "g" * 40 + ",partner:short")
    problems = insecure_secrets(short)
    assert problems == ["ZABOTA_API_TOKEN (partner) is shorter than 32 characters",
                        "ZABOTA_WEBHOOK_SECRET is shorter than 32 characters"]
    assert insecure_secrets(replace(strong, encryption_keys=())) == ["ZABOTA_ENCRYPTION_KEYS is shorter than 32 characters"]


def test_issue8_6_a_service_process_refuses_to_start_with_default_secrets(tmp_path) -> None:
    env = {"PATH": "/usr/bin:/bin", "ZABOTA_VAR_DIR": str(tmp_path), "NATS_URL": "nats://127.0.0.1:1",
           "CLIENTS_PORT": "1", **STRONG, "ZABOTA_SECRET_KEY": "dev-secret-key-change-me"}
    started = subprocess.run([sys.executable, "-m", "clients"], env=env, capture_output=True, text=True, timeout=120)
    assert started.returncode == 2
    assert "ZABOTA_SECRET_KEY is the built-in default" in started.stderr
    assert "ZABOTA_WEBHOOK_SECRET" not in started.stderr.split("refusing", 1)[1]
