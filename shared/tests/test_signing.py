"""Signed, expiring links (DESIGN 8; CL-5 questionnaire, CO-4 plan approvals)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from shared.signing import BadToken, ExpiredToken, expires_at_of, make_token, read_token

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
KEY = "test-secret"


def test_a_token_round_trips_its_data_until_it_expires() -> None:
    token = make_token({"deal_id": "d1"}, secret_key=KEY, purpose="questionnaire", expires_at=NOW + timedelta(days=7))
    assert "/" not in token and "+" not in token and "=" not in token  # URL-safe
    assert read_token(token, secret_key=KEY, purpose="questionnaire", now=NOW) == {"deal_id": "d1"}
    assert expires_at_of(token) == NOW + timedelta(days=7)
    with pytest.raises(ExpiredToken):
        read_token(token, secret_key=KEY, purpose="questionnaire", now=NOW + timedelta(days=7))


def test_a_forged_or_tampered_token_is_refused() -> None:
    token = make_token("d1", secret_key=KEY, purpose="questionnaire", expires_at=NOW + timedelta(hours=1))
    with pytest.raises(BadToken):
        read_token(token, secret_key="another", purpose="questionnaire", now=NOW)
    body, _, sig = token.partition(".")
    later = make_token("d1", secret_key=KEY, purpose="questionnaire", expires_at=NOW + timedelta(days=999))
    with pytest.raises(BadToken):  # a longer expiry pasted onto the old signature
        read_token(later.partition(".")[0] + "." + sig, secret_key=KEY, purpose="questionnaire", now=NOW)
    for garbage in ("", "abc", "a.b", body + ".", "." + sig, "ü.ü"):
        with pytest.raises(BadToken):
            read_token(garbage, secret_key=KEY, purpose="questionnaire", now=NOW)


def test_a_token_opens_only_what_it_was_minted_for() -> None:
    token = make_token("d1", secret_key=KEY, purpose="questionnaire", expires_at=NOW + timedelta(hours=1))
    with pytest.raises(BadToken):
        read_token(token, secret_key=KEY, purpose="plan-approval", now=NOW)


def test_expiry_must_be_aware() -> None:
    with pytest.raises(ValueError):
        make_token("x", secret_key=KEY, purpose="p", expires_at=datetime(2026, 1, 1))
