"""DESIGN 9 / CL-11: an attachment's file exists exactly when its row does: it is written under a
temporary name and renamed only when the request's transaction commits; a rollback removes it."""

from __future__ import annotations

from pathlib import Path

import pytest
from clients import services
from clients.models import Task
from shared.errors import DomainError

from .conftest import payment

MP3 = {"file": ("call.mp3", b"ID3fake-audio", "audio/mpeg")}


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def upload(api, deal_id: str, **data: str):
    return await api.client.post(f"/api/clients/deals/{deal_id}/attachments", headers=api.headers(None),
                                 files=MP3, data=data or None)


async def test_cl11_attachment_file_appears_with_its_row(api_any, tmp_path) -> None:
    deal = await api_any.pay(payment("pay-att-1"))
    response = await upload(api_any, deal["deal_id"])
    assert response.status_code == 201, response.text
    [stored] = files_under(tmp_path / "var" / "attachments")
    assert stored.name == response.json()["id"] and stored.read_bytes() == b"ID3fake-audio"
    assert [a["id"] for a in (await api_any.deal(deal["deal_id"]))["attachments"]] == [response.json()["id"]]


async def test_cl11_attachment_failing_after_the_file_is_written_leaves_no_file_and_no_row(
        api_any, tmp_path, monkeypatch) -> None:
    deal = await api_any.pay(payment("pay-att-2"))
    original = services.history

    def failing_history(ctx, deal, at, kind, *args, **kw):
        if kind == "attachment":
            assert files_under(tmp_path / "var" / "attachments"), "the file was written before this point"
            raise DomainError("refused after the file was written", field="file")
        return original(ctx, deal, at, kind, *args, **kw)

    monkeypatch.setattr(services.attachments, "history", failing_history)
    response = await upload(api_any, deal["deal_id"])
    assert response.status_code == 422, response.text
    monkeypatch.undo()
    assert files_under(tmp_path / "var" / "attachments") == []
    assert (await api_any.deal(deal["deal_id"]))["attachments"] == []


async def test_cl11_attachment_whose_commit_fails_leaves_no_file_and_no_row(api_any, tmp_path, monkeypatch) -> None:
    deal = await api_any.pay(payment("pay-att-3"))
    first_call = next(t for t in deal["tasks"] if t["kind"] == "first_call")
    original = services.history

    def history_then_conflict(ctx, deal_, at, kind, *args, **kw):
        original(ctx, deal_, at, kind, *args, **kw)
        if kind == "attachment":  # a duplicate task: the commit fails with an IntegrityError
            ctx.session.add(Task(id=first_call["id"], deal_id=deal_.id, kind="first_call", rule="CL-3", title="x",
                                 checklist=[], period_no=0, status="open", created_at=at))

    monkeypatch.setattr(services.attachments, "history", history_then_conflict)
    try:
        response = await upload(api_any, deal["deal_id"])
        assert response.status_code >= 400
    except Exception as exc:  # the test client may re-raise the server error
        assert "IntegrityError" in type(exc).__name__ or "UNIQUE" in str(exc).upper() or "duplicate" in str(exc)
    monkeypatch.undo()
    assert files_under(tmp_path / "var" / "attachments") == []
    assert (await api_any.deal(deal["deal_id"]))["attachments"] == []


async def test_cl11_attachment_bad_task_id_is_422_and_writes_nothing(api, tmp_path) -> None:
    deal = await api.pay(payment("pay-att-4"))
    response = await upload(api, deal["deal_id"], task_id="no-such-task")
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "task_id"
    assert files_under(tmp_path / "var" / "attachments") == []


@pytest.mark.parametrize("commit", [True, False])
async def test_cl11_staged_file_of_a_rolled_back_savepoint_is_dropped(api, tmp_path, commit) -> None:
    async def run() -> None:
        async with api.app.state.runtime.db.transaction() as session:
            kept = tmp_path / "var" / "kept"
            services.stage_file(session, kept, b"kept")
            try:
                async with session.begin_nested():
                    services.stage_file(session, tmp_path / "var" / "dropped", b"dropped")
                    raise RuntimeError("savepoint rolls back")
            except RuntimeError:
                pass
            if not commit:
                raise RuntimeError("outer rolls back")

    try:
        api.in_app(run)
    except RuntimeError:
        assert not commit
    assert [p.name for p in files_under(tmp_path / "var")
            if "attachments" not in p.parts and p.suffix != ".db"] == (["kept"] if commit else [])
