"""Issue 8 items 2 and 6: no plain-text password from an import in the database; the encryption keys are their
own setting with rotation (old keys decrypt, new writes use the first) and `clients.rekey` re-encrypts
what is stored — on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from clients import crypto
from clients.imports import SECRET_MARK
from clients.models import Deal, Import
from clients.rekey import rekey
from sqlalchemy import select, text

from shared import crypto as shared_crypto

from .conftest import local, payment

PASSWORD = "Imp0rted-Pa55word-zq81"
LOGIN = "imported.login.zq81"
HEADER = ("ID;Название сделки;Бюджет;Ответственный;Этап сделки;Дата создания;Дата оплаты;Контакт: ФИО;"
          "Контакт: Телефон;Контакт: Email;Контакт: Instagram;Тип услуги;Тип плательщика;Компания;БИН;"
          "Дата начала обслуживания;Логин Instagram;Пароль Instagram;Пароль от почты\n")
ROW = ("201;Пекарня;60000;;Проект запущен;01.03.2026 11:00;01.03.2026 11:00;Ольга;+77010000201;;;"
       f"Ведение аккаунта;;;;01.03.2026;{LOGIN};{PASSWORD};mail-{PASSWORD}\n")
OLD_KEY = "old-encryption-key-0123456789abcdef"
NEW_KEY = "new-encryption-key-fedcba9876543210"


async def upload(api, body: str):
    response = await api.client.post("/api/clients/imports", headers=api.headers(("boss", "lead")),
                                      files={"file": ("deals.csv", body.encode(), "text/csv")})
    assert response.status_code == 202, response.text
    return response.json()


async def stored_rows_text(api) -> str:
    async def read() -> str:
        async with api.app.state.runtime.db.transaction() as session:
            column = "CAST(rows AS TEXT)" if api.app.state.runtime.db.dialect == "postgresql" else "rows"
            return "\n".join(str(r) for r in (await session.execute(text(f"SELECT {column} FROM imports"))).scalars())

    return api.in_app(read)


def sqlite_file_bytes(api) -> bytes:
    path = Path(api.app.state.runtime.db.url.split("///", 1)[1])
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


async def test_issue8_2_an_imported_password_is_never_stored_in_plain_text(api_any) -> None:
    api = api_any
    api.clock.set(local(2026, 3, 2, 12, 0))
    job = await upload(api, HEADER + ROW)
    queued = await stored_rows_text(api)
    assert PASSWORD not in queued and LOGIN not in queued and SECRET_MARK in queued   # encrypted while waiting
    await api.run_due()
    done = await api.ok("get", f"/imports/{job['id']}")
    assert done["status"] == "done" and done["imported"] == 1, done
    after = await stored_rows_text(api)
    assert PASSWORD not in after and SECRET_MARK not in after   # dropped once used
    [deal] = await api.ok("get", "/deals")
    revealed = await api.ok("post", f"/deals/{deal['id']}/credentials/reveal", as_=("boss", "lead"))
    assert revealed == {"instagram_login": LOGIN, "instagram_password": PASSWORD}   # the import still works
    if api.app.state.runtime.db.dialect == "sqlite":
        raw = sqlite_file_bytes(api)
        assert raw and PASSWORD.encode() not in raw and LOGIN.encode() not in raw
    else:
        async def credentials() -> bytes:
            async with api.app.state.runtime.db.transaction() as session:
                return (await session.execute(select(Deal.credentials))).scalar_one()

        assert PASSWORD.encode() not in api.in_app(credentials)


async def test_issue8_6_encryption_keys_rotate_and_rekey_reencrypts_credentials_and_imports(api_any) -> None:
    api = api_any
    runtime = api.app.state.runtime
    base = runtime.settings
    old = replace(base, encryption_keys=(OLD_KEY,))
    runtime.settings = old
    api.clock.set(local(2026, 3, 2, 12, 0))
    deal = await api.pay(payment("rk-1"))
    await api.ok("post", f"/deals/{deal['deal_id']}/stage", {
        "stage": "project_launched", "instagram_login": "rk.login", "instagram_password": "rk-pass",
        "service_start": "2026-03-02"})
    legacy_deal = await api.pay(payment("rk-2"))
    await upload(api, HEADER + ROW)   # stays queued: its secrets wait encrypted under the old key

    async def write_legacy() -> None:   # data written before the keys had their own setting
        legacy = shared_crypto._fernet(crypto.LEGACY, base.secret_key)
        async with runtime.db.transaction() as session:
            row = await session.get(Deal, legacy_deal["deal_id"])
            row.credentials = legacy.encrypt(b'{"login": "legacy", "password": "legacy-pass"}')

    api.in_app(write_legacy)
    rotated = replace(base, encryption_keys=(NEW_KEY, OLD_KEY))
    runtime.settings = rotated
    # new writes use the new key, old data still decrypts
    assert (await api.ok("post", f"/deals/{deal['deal_id']}/credentials/reveal", as_=("boss", "lead")))[
        "instagram_password"] == "rk-pass"
    counts = api.in_app(rekey, runtime.db, rotated)
    assert counts == {"credentials": 2, "import_rows": 1}

    only_new = replace(base, encryption_keys=(NEW_KEY,), secret_key="another-secret-key-0123456789abcdef")
    only_old = replace(base, encryption_keys=(OLD_KEY,), secret_key="another-secret-key-0123456789abcdef")

    async def stored() -> tuple[list[bytes], list[str]]:
        async with runtime.db.transaction() as session:
            creds = list((await session.execute(select(Deal.credentials).where(Deal.credentials.is_not(None))
                                                 .order_by(Deal.id))).scalars())
            rows = [r[SECRET_MARK] for job in (await session.execute(select(Import))).scalars() for r in job.rows
                    if r.get(SECRET_MARK)]
            return creds, rows

    creds, rows = api.in_app(stored)
    assert sorted(crypto.decrypt_credentials(only_new, c)["password"] for c in creds) == ["legacy-pass", "rk-pass"]
    assert crypto.decrypt_json(only_new, rows[0])["Пароль Instagram"] == PASSWORD
    for blob in creds:
        with pytest.raises(ValueError):
            crypto.decrypt_credentials(only_old, blob)   # nothing is left under the old key
    # the queued import still runs once the old key is gone
    runtime.settings = only_new
    await api.run_due()
    assert len(await api.ok("get", "/deals")) == 3
    assert api.in_app(rekey, runtime.db, only_new) == {"credentials": 3, "import_rows": 0}   # harmless again


def test_issue8_6_rekey_command_runs(tmp_path) -> None:
    env = {"PATH": "/usr/bin:/bin", "ZABOTA_VAR_DIR": str(tmp_path), "ZABOTA_ENCRYPTION_KEYS": NEW_KEY,
           "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'c.db'}"}
    migrate = subprocess.run([sys.executable, "-m", "shared.migrate", "upgrade", "clients"], env=env,
                             capture_output=True, text=True, timeout=120)
    assert migrate.returncode == 0, migrate.stderr
    done = subprocess.run([sys.executable, "-m", "clients.rekey"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert '"re_encrypted": {"credentials": 0, "import_rows": 0}' in done.stdout
