"""Figures of the security suite: what each check tried and how much of it was refused.

Every test records its counts with `record(...)`; the conftest prints them at the end of the run and
writes them to `var/security-summary.txt` (the README's security section quotes them).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class Figure:
    check: str
    tried: int
    refused: int
    note: str = ""

    def line(self) -> str:
        share = f"{100 * self.refused / self.tried:.0f}%" if self.tried else "-"
        return f"{self.check:<58} tried {self.tried:>6}  refused/safe {self.refused:>6} ({share}){'  ' + self.note if self.note else ''}"


FIGURES: list[Figure] = []


def record(check: str, tried: int, refused: int, note: str = "") -> Figure:
    figure = Figure(check, tried, refused, note)
    FIGURES.append(figure)
    print(figure.line())
    return figure


def summary() -> str:
    lines = ["Security suite (tests/security): tried / refused (or rendered inert)", ""]
    lines += [f.line() for f in FIGURES]
    return "\n".join(lines) + "\n"


def write_summary(root: Path) -> Path | None:
    if not FIGURES:
        return None
    out = root / "var" / "security-summary.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(summary(), encoding="utf-8")
    return out
