"""Migration 0003: rows written before timeline codes, deadline codes and the lead search text get
them, read back from their English texts, so old deals translate like new ones."""

from __future__ import annotations

import json
import sqlite3

from alembic import command
from shared.migrate import alembic_config


def test_0003_backfills_timeline_codes_deadline_what_codes_and_lead_search_text(tmp_path) -> None:
    path = tmp_path / "old.db"
    cfg = alembic_config("clients", f"sqlite+aiosqlite:///{path}")
    command.upgrade(cfg, "0002")
    db = sqlite3.connect(path)
    ts = "2026-03-02 06:00:00.000000"
    db.execute("INSERT INTO clients (id, full_name, phone, phone_digits, instagram, email, payer_type, notes, "
               "created_at) VALUES ('c1', 'Айгерим', '+7 701', '7701', '', '', 'individual', '', ?)", (ts,))
    db.execute("INSERT INTO deals (id, client_id, service_kind, stage, created_at, first_payment_at, period_no, "
               "trace_headers) VALUES ('d1', 'c1', 'account_management', 'new', ?, ?, 0, '{}')", (ts, ts))
    db.execute("INSERT INTO tasks (id, deal_id, kind, rule, title, checklist, period_no, status, created_at) "
               "VALUES ('t1', 'd1', 'first_call', 'CL-3', 'First call (script #3)', '[]', 0, 'open', ?)", (ts,))
    db.execute("INSERT INTO deadlines (id, deal_id, task_id, rule, what, due_at, state, created_at) VALUES "
               "('dl1', 'd1', 't1', 'CL-3', 'First call (script #3)', ?, 'breached', ?), "
               "('dl2', 'd1', NULL, 'CL-9', 'First published post', ?, 'open', ?)", (ts, ts, ts, ts))
    history = [("payment", "paid 60000.00 KZT", {"payment_id": "p1"}),
               ("task", "task first_call → manager1", {"task_id": "t1", "rule": "CL-3"}),
               ("deadline", "CL-3 breached", {"deadline_id": "dl1"}),
               ("deadline", "CL-3 waived: Клиент в отпуске", {"deadline_id": "dl1"}),
               ("money_back", "money-back window ended (refunded)", {}),
               ("something_new", "nobody knows this one", {})]
    for i, (kind, summary, data) in enumerate(history):
        db.execute("INSERT INTO deal_history (id, deal_id, at, kind, summary, data) VALUES (?, 'd1', ?, ?, ?, ?)",
                   (i + 1, ts, kind, summary, json.dumps(data)))
    db.execute("INSERT INTO leads (id, full_name, phone, instagram, email, product, payer_type, notes, source, "
               "owner, stage, created_at) VALUES ('l1', 'Берик Ахметов', '+7 700 123', '', 'B@x.kz', '', "
               "'individual', '', '', 'manager1', 'dialog', ?)", (ts,))
    db.commit()
    db.close()

    command.upgrade(cfg, "head")

    db = sqlite3.connect(path)
    rows = {r[0]: (r[1], json.loads(r[2])) for r in db.execute("SELECT id, code, data FROM deal_history")}
    assert rows[1] == ("payment.received", {"payment_id": "p1", "amount": "60000.00", "currency": "KZT"})
    assert rows[2] == ("task.assigned", {"task_id": "t1", "rule": "CL-3", "task_kind": "first_call",
                                         "assignee": "manager1"})
    assert rows[3] == ("deadline.breached", {"deadline_id": "dl1", "rule": "CL-3", "what_code": "first_call"})
    assert rows[4][0] == "deadline.waived" and rows[4][1]["reason"] == "Клиент в отпуске"
    assert rows[5] == ("money_back.ended", {"refunded": True})
    assert rows[6] == (None, {})                      # unknown: stays without a code (the UI shows the summary)
    assert dict(db.execute("SELECT id, what_code FROM deadlines")) == {"dl1": "first_call", "dl2": "first_post"}
    [(search,)] = db.execute("SELECT search_text FROM leads")
    assert "берик ахметов" in search and "b@x.kz" in search and "7700123" in search


def test_0004_renumbers_repeated_document_numbers_and_seeds_the_year_counters(tmp_path) -> None:
    path = tmp_path / "old.db"
    cfg = alembic_config("clients", f"sqlite+aiosqlite:///{path}")
    command.upgrade(cfg, "0003")
    db = sqlite3.connect(path)
    ts = "2026-03-02 06:00:00.000000"
    db.execute("INSERT INTO clients (id, full_name, phone, phone_digits, instagram, email, payer_type, notes, "
               "created_at) VALUES ('c1', 'Айгерим', '+7 701', '7701', '', '', 'individual', '', ?)", (ts,))
    db.execute("INSERT INTO deals (id, client_id, service_kind, stage, created_at, first_payment_at, period_no, "
               "trace_headers) VALUES ('d1', 'c1', 'account_management', 'new', ?, ?, 0, '{}')", (ts, ts))
    for doc_id, number, at in (("a", "2026-1", "2026-03-01"), ("b", "2026-1", "2026-03-02"),
                               ("c", "2026-2", "2026-03-03"), ("d", "2025-7", "2025-12-01")):
        db.execute("INSERT INTO documents (id, deal_id, kind, number, html, created_at) VALUES "
                   "(?, 'd1', 'invoice', ?, '', ?)", (doc_id, number, at + " 06:00:00.000000"))
    db.commit()
    command.upgrade(cfg, "head")
    assert dict(db.execute("SELECT id, number FROM documents")) == {"a": "2026-1", "b": "2026-3", "c": "2026-2",
                                                                    "d": "2025-7"}
    assert dict(db.execute("SELECT year, n FROM document_counters")) == {2025: 7, 2026: 3}


def test_0006_backfills_client_search_text_and_each_deals_money(tmp_path) -> None:
    """Issue 9: the board sums the deals' own paid_total; old deals get it from their payments and refunds
    (rules.net_paid: the first payment's currency), and old clients their search text."""
    path = tmp_path / "old.db"
    cfg = alembic_config("clients", f"sqlite+aiosqlite:///{path}")
    command.upgrade(cfg, "infra_0002")
    db = sqlite3.connect(path)
    t1, t2, t3 = "2026-03-02 06:00:00.000000", "2026-04-02 06:00:00.000000", "2026-04-05 06:00:00.000000"
    db.execute("INSERT INTO clients (id, full_name, phone, phone_digits, instagram, email, payer_type, notes, "
               "created_at) VALUES ('c1', 'Айгерим Сапарова', '+7 701 555', '7701555', 'https://instagram.com/Cakes',"
               " '', 'individual', '', ?)", (t1,))
    db.execute("INSERT INTO deals (id, client_id, service_kind, stage, created_at, first_payment_at, period_no, "
               "trace_headers) VALUES ('d1', 'c1', 'account_management', 'new', ?, ?, 0, '{}')", (t1, t1))
    for pid, amount, currency, at in (("p1", "60000.00", "KZT", t1), ("p2", "60000.00", "KZT", t2),
                                      ("p3", "100.00", "USD", t3)):
        db.execute("INSERT INTO payments (id, external_id, deal_id, amount, currency, paid_at, renewal, undid_loss, "
                   "created_at) VALUES (?, ?, 'd1', ?, ?, ?, 0, 0, ?)", (pid, pid, amount, currency, at, at))
    db.execute("INSERT INTO refunds (id, external_id, deal_id, payment_id, amount, currency, refunded_at, "
               "within_window, created_at) VALUES ('r1', 'r1', 'd1', 'p1', '10000.00', 'KZT', ?, 1, ?)", (t2, t2))
    db.commit()
    db.close()

    command.upgrade(cfg, "head")

    db = sqlite3.connect(path)
    paid, currency, last = db.execute("SELECT paid_total, currency, last_paid_at FROM deals").fetchone()
    assert (float(paid), currency, last[:10]) == (110000.0, "KZT", "2026-04-05")
    [(text,)] = db.execute("SELECT search_text FROM clients").fetchall()
    assert "айгерим сапарова" in text and "instagram.com/cakes" in text and "7701555" in text
    db.close()
