"""Import of an amoCRM deals export (CSV), processed in the background, row by row.

`POST /api/clients/imports` (multipart, field `file`) parses the CSV, stores its rows in an `imports`
row and schedules a durable timer, so the work survives a restart, and answers 202 with the import id.
The timer handler takes the next chunk of rows; each row runs in its own savepoint (a
sub-transaction): a good row is committed with its chunk, a bad row is rolled back — it changes
nothing — and its errors (row number as in the file, header = row 1; field; reason) are kept. The
next chunk is a new timer, i.e. a new transaction, so progress is visible while it runs
(`GET /api/clients/imports/{id}`: total, processed, imported, errors[]).

Columns (an amoCRM "Сделки" export; UTF-8 or Windows-1251, `;` or `,` separated; column order free,
unknown columns ignored):

| column | meaning | required |
|---|---|---|
| ID | amoCRM deal id → payment external id `amocrm:<ID>` (re-importing is idempotent) | yes |
| Название сделки | deal name (kept in the client's notes) | no |
| Бюджет | amount paid, `60000`, `60 000,00` | yes |
| Валюта | ISO currency, default KZT | no |
| Ответственный | responsible manager's login (must be in the roster; else least-loaded) | no |
| Этап сделки | Новая / Оплачено, Связались с клиентом, Получена анкета, Проект запущен, Отправлено уведомление, Клиент потерян (or the stage ids) | yes |
| Дата создания | when the deal was created (used if Дата оплаты is empty) | no |
| Дата оплаты | payment date `DD.MM.YYYY HH:MM[:SS]` or ISO, agency time zone | yes* |
| Контакт: ФИО | client's full name (falls back to Название сделки) | yes |
| Контакт: Телефон, Контакт: Email, Контакт: Instagram | CL-1 | phone yes |
| Тип услуги | Ведение аккаунта / Комплексное продвижение | yes |
| Тип плательщика | Физ. лицо / Юр. лицо (default Физ. лицо) | no |
| Компания, БИН | legal entities | for Юр. лицо |
| Дата начала обслуживания, Логин Instagram, Пароль Instagram | CL-8, for launched stages | for those |
| Дата закрытия | when a lost deal was lost (default: Дата оплаты) | no |

Secrets never rest in plain text (issue 8 item 2): the credential columns (Логин/Пароль Instagram) and any
column whose name says password/пароль/token/токен/secret are taken out of a row before it is stored and
kept encrypted (clients.crypto, the newest of ZABOTA_ENCRYPTION_KEYS) under the row's `__secret__` key; the
row is opened only in memory while it is imported, and when the import is done the encrypted part is
dropped from every row (the deal keeps the credentials, encrypted, as CL-8 says).

History the export does not carry is not invented: a deal imported past `new` has its earlier
deadlines waived by the importer ("imported at stage …") rather than met or breached, so nobody is
fined or credited for work we cannot see. Launch data opens a real period, and what is due from it
(renewal task, automatic loss) happens — those are rules applied to the imported facts.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

from shared.auth import Actor
from shared.errors import DomainError
from shared.messages import message_code
from sqlalchemy import select

from clients import crypto, rules
from clients.models import Deadline, Import
from clients.schemas import ClientIn, PaymentIn
from shared import messages as M
from shared import timers

CHUNK = 20
STAGE_NAMES = {
    "новая": "new", "оплачено": "new", "новая сделка": "new", "первичный контакт": "new",
    "связались с клиентом": "contacted", "получена анкета": "questionnaire_received",
    "проект запущен": "project_launched", "отправлено уведомление": "notification_sent",
    "клиент потерян": "lost", "закрыто и не реализовано": "lost",
    **{s: s for s in rules.STAGES},
}
KIND_NAMES = {"ведение аккаунта": "account_management", "комплексное продвижение": "complex_promotion",
              **{k: k for k in rules.SERVICE_KINDS}}
PAYER_NAMES = {"физ. лицо": "individual", "физ лицо": "individual", "физическое лицо": "individual",
               "юр. лицо": "legal", "юр лицо": "legal", "юридическое лицо": "legal",
               "individual": "individual", "legal": "legal"}


CREDENTIAL_COLUMNS = ("Логин Instagram", "Пароль Instagram")
SECRET_WORDS = ("пароль", "password", "token", "токен", "secret", "секрет")
SECRET_MARK = "__secret__"


def is_secret_column(name: str) -> bool:
    lower = name.lower()
    return name in CREDENTIAL_COLUMNS or any(word in lower for word in SECRET_WORDS)


def seal_row(settings, row: dict[str, str]) -> dict[str, str]:
    """The row as it may be stored: secret columns removed, their values encrypted under SECRET_MARK."""
    secrets = {k: v for k, v in row.items() if is_secret_column(k) and v}
    sealed = {k: v for k, v in row.items() if not is_secret_column(k) and k != SECRET_MARK}
    if secrets:
        sealed[SECRET_MARK] = crypto.encrypt_json(settings, secrets)
    return sealed


def open_row(settings, row: dict[str, str]) -> dict[str, str]:
    """A stored row with its secret columns decrypted (in memory only)."""
    opened = {k: v for k, v in row.items() if k != SECRET_MARK}
    if row.get(SECRET_MARK):
        opened.update(crypto.decrypt_json(settings, row[SECRET_MARK]))
    return opened


def drop_secrets(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if k != SECRET_MARK} for row in rows]


class RowError(Exception):
    """A row the import cannot take: the column, and what is wrong as a message code (shared.messages) with
    its parameters; `message` is the English text."""

    def __init__(self, field: str, code: str, **params: str) -> None:
        self.message = M.text(code, **params)
        super().__init__(self.message)
        self.field, self.code, self.params = field, code, params


def parse_csv(raw: bytes) -> list[dict[str, str]]:
    for encoding in ("utf-8-sig", "cp1251"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise M.error("file", M.UPLOAD_ENCODING)
    sample = text[:4096]
    delimiter = ";" if sample.count(";") > sample.count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    if not reader.fieldnames or "ID" not in [f.strip() for f in reader.fieldnames]:
        raise M.error("file", M.UPLOAD_NOT_AMOCRM)
    return [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]


def parse_when(cal, raw: str, field: str) -> datetime:
    """amoCRM writes local times `DD.MM.YYYY HH:MM:SS`; ISO with an offset is accepted too."""
    for fmt in ("%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y"):
        try:
            naive = datetime.strptime(raw, fmt)
            return naive.replace(tzinfo=cal.tz).astimezone(UTC)
        except ValueError:
            continue
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise RowError(field, M.IMPORT_NOT_A_DATE, value=raw, format="DD.MM.YYYY HH:MM") from None
    return parsed.replace(tzinfo=cal.tz) if parsed.tzinfo is None else parsed


def parse_day(raw: str, field: str) -> date:
    for fmt in ("%d.%m.%Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(raw, fmt).date()
        except ValueError:
            continue
    raise RowError(field, M.IMPORT_NOT_A_DATE, value=raw, format="DD.MM.YYYY")


def row_to_payment(cal, row: dict[str, str]) -> tuple[PaymentIn, str, dict[str, str]]:
    def need(column: str) -> str:
        value = row.get(column, "")
        if not value:
            raise RowError(column, M.REQUIRED)
        return value

    external = need("ID")
    stage = STAGE_NAMES.get(need("Этап сделки").lower())
    if stage is None:
        raise RowError("Этап сделки", M.IMPORT_UNKNOWN_STAGE, value=row["Этап сделки"])
    kind = KIND_NAMES.get(need("Тип услуги").lower())
    if kind is None:
        raise RowError("Тип услуги", M.IMPORT_UNKNOWN_SERVICE, value=row["Тип услуги"])
    payer = PAYER_NAMES.get((row.get("Тип плательщика") or "физ. лицо").lower())
    if payer is None:
        raise RowError("Тип плательщика", M.IMPORT_UNKNOWN_PAYER, value=row["Тип плательщика"])
    paid_raw = row.get("Дата оплаты") or row.get("Дата создания") or ""
    if not paid_raw:
        raise RowError("Дата оплаты", M.REQUIRED)
    paid_at = parse_when(cal, paid_raw, "Дата оплаты" if row.get("Дата оплаты") else "Дата создания")
    amount = need("Бюджет").replace("\u00a0", "").replace(" ", "").replace(",", ".")
    name = row.get("Контакт: ФИО") or row.get("Название сделки") or ""
    if not name:
        raise RowError("Контакт: ФИО", M.REQUIRED)
    client = ClientIn(full_name=name, phone=row.get("Контакт: Телефон") or None,
                      instagram=row.get("Контакт: Instagram") or None, email=row.get("Контакт: Email") or None,
                      payer_type=payer, company_name=row.get("Компания") or None, bin=row.get("БИН") or None,
                      notes=row.get("Название сделки", ""))
    payment = PaymentIn(external_id=f"amocrm:{external}", paid_at=paid_at, amount=amount,
                        currency=row.get("Валюта") or "KZT", service_kind=kind, client=client,
                        responsible_manager=row.get("Ответственный") or None)
    return payment, stage, row


async def apply_stage(ctx, deal, stage: str, row: dict[str, str], paid_at: datetime) -> None:
    """Bring an imported deal to its amoCRM stage without inventing the history in between."""
    from clients import services

    order = rules.STAGES
    target = order.index(stage) if stage != "lost" else None
    reason = f"imported from amoCRM at stage {stage}"
    if stage == "lost":
        lost_at = parse_when(ctx.cal, row["Дата закрытия"], "Дата закрытия") if row.get("Дата закрытия") \
            else paid_at
        await services.lose(ctx, deal, "declined", max(lost_at, paid_at))
        return
    if target >= order.index("contacted") and deal.stage == "new":
        task = await services.open_task(ctx.session, deal, "first_call")
        if task is not None:
            task.status, task.completed_by = "done", ctx.actor.login
            for deadline in (await ctx.session.execute(select(Deadline).where(Deadline.task_id == task.id))).scalars():
                if deadline.state in ("open", "breached"):
                    services.waive(ctx, deal, deadline, reason)
        services.change_stage(ctx, deal, "contacted", paid_at)
    if target >= order.index("questionnaire_received") and deal.stage == "contacted":
        services.change_stage(ctx, deal, "questionnaire_received", paid_at)
    if target >= order.index("project_launched") and deal.period_no == 0:
        start_raw = row.get("Дата начала обслуживания", "")
        if not start_raw:
            raise RowError("Дата начала обслуживания", M.IMPORT_REQUIRED_LAUNCHED)
        start = parse_day(start_raw, "Дата начала обслуживания")
        for column in ("Логин Instagram", "Пароль Instagram"):
            if not row.get(column):
                raise RowError(column, M.IMPORT_REQUIRED_LAUNCHED)
        launched_at = max(paid_at, rules.local_midnight(ctx.cal, start))
        await services.launch(ctx, deal, min(launched_at, ctx.now), start, row["Логин Instagram"],
                              row["Пароль Instagram"])
    if stage == "notification_sent" and deal.stage == "project_launched":
        services.change_stage(ctx, deal, "notification_sent", paid_at)


async def import_row(ctx, row: dict[str, str]) -> None:
    from clients import services

    payment, stage, row = row_to_payment(ctx.cal, row)
    result = await services.record_payment(ctx, payment)
    if result.created:
        await apply_stage(ctx, result.deal, stage, row, payment.paid_at)
        await services.settle_deal(ctx, result.deal)


async def start_import(ctx, filename: str, raw: bytes) -> Import:
    rows = [seal_row(ctx.settings, row) for row in parse_csv(raw)]
    job = Import(filename=filename, status="queued", rows=rows, total=len(rows), processed=0, imported=0,
                 errors=[], created_by=ctx.actor.login, created_at=ctx.now)
    ctx.session.add(job)
    await ctx.session.flush()
    await timers.schedule(ctx.session, kind="clients.import", key=f"import:{job.id}:0", due_at=ctx.now,
                          payload={"import_id": job.id}, clock=ctx.clock)
    ctx.audit("import.started", job.id, filename=filename, rows=len(rows))
    return job


def import_handler(make_ctx):
    async def on_import(session, timer) -> None:
        job = await session.get(Import, timer.payload["import_id"])
        if job is None or job.status == "done":
            return
        base = make_ctx(session)
        ctx = type(base)(base.session, base.clock, base.settings,
                         Actor(login=f"import:{job.created_by}", role="integration"), base.handlers)
        job.status = "running"
        errors = list(job.errors)
        start = job.processed
        for index in range(start, min(start + CHUNK, job.total)):
            row_number = index + 2  # the header is row 1
            try:
                async with session.begin_nested():
                    await import_row(ctx, open_row(ctx.settings, job.rows[index]))
                job.imported += 1
            except RowError as exc:
                errors.append({"row": row_number, "field": exc.field, "message": exc.message, "code": exc.code,
                               "params": exc.params})
            except DomainError as exc:
                for item in exc.errors or [{"field": None, "message": exc.message, "code": None}]:
                    errors.append({"row": row_number, "field": item.get("field"), "message": item["message"],
                                   "code": item.get("code") or message_code(item["message"]),
                                   "params": item.get("params") or {}})
            job.processed = index + 1
        job.errors = errors
        if job.processed >= job.total:
            job.status, job.finished_at = "done", base.now
            job.rows = drop_secrets(job.rows)   # a new list: the JSON column is written again
        else:
            await timers.schedule(session, kind="clients.import", key=f"import:{job.id}:{job.processed}",
                                  due_at=base.now, payload={"import_id": job.id}, clock=base.clock)

    return on_import


def import_view(job: Import) -> dict:
    return {"id": job.id, "filename": job.filename, "status": job.status, "total": job.total,
            "processed": job.processed, "imported": job.imported, "errors": job.errors,
            "created_at": job.created_at.isoformat(), "finished_at": job.finished_at.isoformat()
            if job.finished_at else None}

