"""Fixtures of the security suite (issue 8, "The suite that keeps it so").

`stack`: one real system for the whole suite (nats-server, four services, the gateway; stack.py), seeded
with objects owned by someone else. Tests that only read it or add their own rows share it; the schema
fuzzing, which writes anything it likes, gets its own (`fresh_stack`).

At the end of the run the figures every test recorded are printed and written to
var/security-summary.txt.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .figures import FIGURES, summary, write_summary
from .stack import Stack

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    system = Stack(tmp_path_factory.mktemp("security-stack"))
    try:
        system.start().seed()
        yield system
    finally:
        system.stop()


@pytest.fixture(scope="module")
def fresh_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    system = Stack(tmp_path_factory.mktemp("security-fuzz-stack"))
    try:
        system.start()
        yield system
    finally:
        system.stop()


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ARG001
    if FIGURES:
        terminalreporter.write_sep("-", "security figures")
        terminalreporter.write(summary())
        out = write_summary(ROOT)
        terminalreporter.write_line(f"(written to {out})")
