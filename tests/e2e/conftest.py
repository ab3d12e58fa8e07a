"""Fixtures for tests that drive a real browser against real servers.

- `live_server(app) -> base_url`: serves a Litestar (any ASGI) app with uvicorn on a free port in a
  background thread, lifespan included; `live_server.stop(base_url)` stops one early (a service
  going down); all are stopped at the end of the test.
- `browser_page`: a Playwright page in Debian's chromium (/usr/bin/chromium) with a fresh profile.
  Without chromium the test is skipped with the reason — unless ZABOTA_REQUIRE_BROWSER=1 (CI),
  where that fails the run.

Test trees outside tests/e2e can re-export these (see services/gateway/tests/conftest.py).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServers:
    """uvicorn servers started by one test, each in its own thread with its own event loop."""

    def __init__(self) -> None:
        self._running: dict[str, tuple[Any, threading.Thread]] = {}

    def __call__(self, app: Any, port: int | None = None, timeout: float = 30.0) -> str:
        import uvicorn

        port = port or _free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
                                access_log=False, timeout_graceful_shutdown=5)
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name=f"live-server-{port}", daemon=True)
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError(f"the app on port {port} failed to start (see the log above)")
            if time.monotonic() > deadline:
                server.should_exit = True
                raise RuntimeError(f"the app on port {port} did not start in {timeout}s")
            time.sleep(0.02)
        base_url = f"http://127.0.0.1:{port}"
        self._running[base_url] = (server, thread)
        return base_url

    def stop(self, base_url: str) -> None:
        server, thread = self._running.pop(base_url)
        server.should_exit = True
        thread.join(15)

    def stop_all(self) -> None:
        for base_url in list(self._running):
            self.stop(base_url)


@pytest.fixture
def live_server() -> Iterator[LiveServers]:
    servers = LiveServers()
    try:
        yield servers
    finally:
        servers.stop_all()


@pytest.fixture
async def browser_page(tmp_path: Path) -> AsyncIterator[Any]:
    if not Path(CHROMIUM).exists():
        reason = f"no browser: {CHROMIUM} is missing (apt-get install chromium)"
        if os.environ.get("ZABOTA_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.async_api import async_playwright

    profile = tmp_path / "chromium-profile"   # a fresh user-data-dir per test: no cookies carried over
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = context.pages[0] if context.pages else await context.new_page()
            page.set_default_timeout(15_000)
            yield page
        finally:
            await context.close()
