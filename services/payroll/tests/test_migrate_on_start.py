"""Migrations run once per release in a cluster (issue 14): ZABOTA_MIGRATE_ON_START=0 leaves the schema to the Job."""

from __future__ import annotations

import sqlite3
from dataclasses import replace

from payroll.app import spec
from shared.clock import SystemClock
from shared.service import Runtime
from shared.settings import Settings
from shared.testing import make_settings


def _tables(path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


async def test_issue14_migrate_on_start_off_leaves_the_schema_to_the_release_job(tmp_path) -> None:
    assert Settings.from_env("payroll", {"ZABOTA_MIGRATE_ON_START": "0"}).migrate_on_start is False
    assert Settings.from_env("payroll", {}).migrate_on_start is True
    for flag, path in ((False, tmp_path / "job.db"), (True, tmp_path / "start.db")):
        settings = make_settings("payroll", database_url=f"sqlite+aiosqlite:///{path}", migrate_on_start=flag)
        # Without the start-up hooks: they read tables, which in a cluster the release Job has made first.
        runtime = Runtime(replace(spec(), on_startup=()), settings, SystemClock())
        await runtime.start(background=False)
        await runtime.db.dispose()
        assert ("ledger_lines" in _tables(path)) is flag
