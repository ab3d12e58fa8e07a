"""CO-7 weekly statistics as pure functions: reading an insights CSV (headers by name in ru / kk / en / zh,
missing columns tolerated, thousands separators, per-row errors), weeks, engagement rate, week-over-week
change. No HTTP, no database."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from shared import messages as M

METRICS = ("likes", "comments", "saves", "reach", "followers")

# Header aliases, compared after `_norm` (lowercase, letters and digits only). Meta's insights exports
# name the same column differently by language and by version.
ALIASES: dict[str, tuple[str, ...]] = {
    "date": ("date", "day", "дата", "день", "күні", "күн", "日期", "date(utc)", "reportingstarts", "начало отчетности"),
    "likes": ("likes", "like", "лайки", "лайков", "отметкинравится", "отметки«нравится»", "нравится", "лайктар",
              "赞", "点赞", "点赞数", "赞数"),
    "comments": ("comments", "комментарии", "комментариев", "пікірлер", "评论", "评论数"),
    "saves": ("saves", "saved", "сохранения", "сохранений", "сақтаулар", "收藏", "保存", "收藏数"),
    "reach": ("reach", "accountsreached", "охват", "охваченныеаккаунты", "қамту", "覆盖人数", "覆盖", "触达"),
    "followers": ("followers", "follows", "followercount", "подписчики", "подписчиков", "жазылушылар", "粉丝",
                  "粉丝数", "关注者"),
}


def _norm(header: str) -> str:
    return re.sub(r"[\W_]+", "", header.strip().strip('"').casefold())


_LOOKUP = {_norm(alias): name for name, aliases in ALIASES.items() for alias in aliases}
_NUMBER = re.compile(r"\d{1,3}(?:([ ,.'’\u00a0\u202f])\d{3})?(?:\1\d{3})*|\d+")


def parse_count(raw: str) -> int:
    """A whole count with optional thousands separators: "12 345", "12,345", "12.345", "12'345" → 12345."""
    text = raw.strip().replace("\u00a0", " ").replace("\u202f", " ")
    if not _NUMBER.fullmatch(text):
        raise ValueError(M.text(M.STATS_NOT_WHOLE, value=raw))
    return int(re.sub(r"\D", "", text))


def parse_day(raw: str) -> date:
    """ISO (2026-03-02, also with a time), 02.03.2026, 2026/03/02."""
    text = raw.strip()
    for fmt in ("%Y-%m-%d", "%d.%m.%Y", "%Y/%m/%d", "%d.%m.%y"):
        try:
            return datetime.strptime(text[:10] if fmt == "%Y-%m-%d" else text, fmt).date()
        except ValueError:
            continue
    raise ValueError(M.text(M.STATS_NOT_A_DATE, value=raw))


def decode_text(content: bytes) -> str:
    """UTF-16 with a BOM (some Meta exports), UTF-8 (with or without a BOM), else Windows-1251."""
    if content.startswith((b"\xff\xfe", b"\xfe\xff")):
        return content.decode("utf-16")
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        return content.decode("cp1251")


@dataclass
class Parsed:
    columns: dict[str, str]                        # our metric → the file's header
    ignored: list[str]                             # headers we do not know
    days: dict[date, dict[str, int]] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    rows: int = 0


def _cell(row: list[str], index: int) -> str:
    return row[index] if index < len(row) else ""


def parse_csv(content: bytes) -> Parsed:
    """Rows of daily figures by header name; a file without a date column is one error for the whole file."""
    text = decode_text(content)
    sample = text[:4096]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    header = next(reader, None) or []
    columns: dict[str, int] = {}
    ignored = []
    for index, name in enumerate(header):
        key = _LOOKUP.get(_norm(name))
        if key and key not in columns:
            columns[key] = index
        elif name.strip():
            ignored.append(name.strip())
    parsed = Parsed(columns={k: header[i].strip() for k, i in columns.items()}, ignored=ignored)
    if "date" not in columns:
        parsed.errors.append({"row": 1, **M.item("date", M.STATS_NO_DATE_COLUMN)})
        return parsed
    if not set(columns) & set(METRICS):
        parsed.errors.append({"row": 1, **M.item("file", M.STATS_NO_FIGURE_COLUMN)})
        return parsed
    for number, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        parsed.rows += 1
        errors = []
        values: dict[str, int] = {}
        day = None
        try:
            day = parse_day(_cell(row, columns["date"]))
        except ValueError:
            errors.append({"row": number, **M.item("date", M.STATS_NOT_A_DATE, value=_cell(row, columns["date"]))})
        for metric in METRICS:
            if metric not in columns:
                continue
            cell = row[columns[metric]].strip() if columns[metric] < len(row) else ""
            if cell in ("", "-", "—"):
                continue
            try:
                values[metric] = parse_count(cell)
            except ValueError:
                errors.append({"row": number, **M.item(metric, M.STATS_NOT_WHOLE, value=cell)})
        if errors:
            parsed.errors.extend(errors)
        elif day is not None:
            parsed.days[day] = values  # a later row of the same day wins
    return parsed


def week_start(d: date) -> date:
    """CO-7: weeks run Monday to Sunday (the agency's local days)."""
    return d - timedelta(days=d.weekday())


def week_totals(days: dict[date, dict[str, int | None]]) -> dict[str, int | None]:
    """A week's figures from its days: likes, comments, saves, reach summed; followers as of its last day."""
    totals: dict[str, int | None] = {}
    for metric in ("likes", "comments", "saves", "reach"):
        present = [v[metric] for v in days.values() if v.get(metric) is not None]
        totals[metric] = sum(present) if present else None
    with_followers = [d for d in sorted(days) if days[d].get("followers") is not None]
    totals["followers"] = days[with_followers[-1]]["followers"] if with_followers else None
    return totals


def engagement_rate(figures: dict[str, int | None]) -> float | None:
    """CO-7: interactions (likes + comments + saves) / reach, 4 decimals; None without reach."""
    reach = figures.get("reach")
    if not reach:
        return None
    interactions = sum(figures.get(m) or 0 for m in ("likes", "comments", "saves"))
    return round(interactions / reach, 4)


def change(current: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
    """Week over week, per figure: the difference and the relative change (None where either is missing)."""
    out: dict[str, Any] = {}
    for metric in (*METRICS, "engagement_rate"):
        now, before = current.get(metric), (previous or {}).get(metric)
        if now is None or before is None:
            out[metric] = None
            continue
        delta = round(now - before, 4) if metric == "engagement_rate" else now - before
        out[metric] = {"delta": delta, "pct": round((now - before) / before * 100, 1) if before else None}
    return out
