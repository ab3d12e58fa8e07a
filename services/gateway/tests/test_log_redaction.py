"""Issue 8 §9: signed questionnaire links and tokens never reach a log line — neither the gateway's
(httpx request lines to the clients service, page paths) nor the clients service's own log — and the
demo seed script takes its token from the environment."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient
from shared.settings import Settings
from shared.telemetry import REDACTED, redact, setup_logging

from .backends import Backend, payment, roster, serve_clients
from .conftest import ROOT, csrf_of, down_service_urls, gateway_settings, sign_in


@pytest.fixture
def clients_url(service_process, nats_server) -> str:
    return serve_clients(service_process, nats_server.url)


@pytest.fixture
def clients(clients_url: str) -> Backend:
    backend = Backend(clients_url, "clients")
    roster(backend)
    return backend


@pytest.fixture
def settings(tmp_path, clients_url: str) -> Settings:
    return gateway_settings(f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}",
                            service_urls={**down_service_urls(), "clients": clients_url})


@pytest.fixture
def json_log(capsys):
    """The process's real log set-up (JSON lines on stderr, shared.telemetry.setup_logging), captured."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    setup_logging("gateway", "DEBUG")
    try:
        yield lambda: capsys.readouterr().err
    finally:
        root.handlers[:], root.level = saved


@pytest.mark.parametrize(("line", "secret"), [
    ('HTTP Request: GET http://127.0.0.1:8001/public/clients/questionnaire/eyJkIjp7fSwiZSI6MSwicCI6InEifQ.'
     'c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWc "HTTP/1.1 200 OK"', "eyJkIjp7fSwiZSI6MSwicCI6InEifQ"),
    ('127.0.0.1:50000 - "GET /q/short-but-secret?lang=en HTTP/1.1" 200', "short-but-secret"),
    ('127.0.0.1:50000 - "POST /q/short-but-secret HTTP/1.1" 303', "short-but-secret"),
    ("GET /plans/approve/abc123def456 200", "abc123def456"),
    ("GET /export?lang=ru&token=abcdef123456&x=1", "abcdef123456"),
    ("GET /x?signature=deadbeefcafe", "deadbeefcafe"),
    ("calling with Authorization: Bearer my-integration-token", "my-integration-token"),
])
def test_issue8_9_redact_masks_capabilities(line: str, secret: str) -> None:
    clean = redact(line)
    assert secret not in clean and REDACTED in clean


def test_issue8_9_redact_keeps_ordinary_lines() -> None:
    for line in ("GET /deals/0b5e/questionnaire-link 201", "GET /api/clients/deals?page=2&manager=manager1",
                 "payroll month 2026-01 closed by lead"):
        assert redact(line) == line


async def test_issue8_9_a_questionnaire_flow_leaves_no_token_in_any_log(json_log, client: AsyncTestClient,
                                                                         clients: Backend, tmp_path: Path) -> None:
    deal = clients.call("POST", "/payments", payment("p-log"))
    staff_token = await sign_in(client, "manager1")
    link = await client.post(f"/deals/{deal['id']}/questionnaire-link", data={"_csrf": staff_token},
                             headers={"HX-Request": "true"})
    assert link.status_code == 200, link.text
    token = re.search(r'value="http://[^"]+/q/([^"]+)"', link.text).group(1)
    await client.post("/logout", data={"_csrf": staff_token})

    # The client opens the link, sends the form empty once, then answers.
    form = await client.get(f"/q/{token}?lang=en")
    assert form.status_code == 200, form.text
    # (issue 8 §7: the public questionnaire page carries the security headers too)
    assert "frame-ancestors 'none'" in form.headers["content-security-policy"]
    assert form.headers["referrer-policy"] == "same-origin"   # the token never leaves in a Referer
    assert (await client.post(f"/q/{token}", data={"_csrf": csrf_of(form.text)})).status_code == 422
    sent = await client.post(f"/q/{token}", data={"_csrf": csrf_of(form.text), "business": "Торты",
                                                  "audience": "Мамы", "goals": "Заявки"})
    assert sent.status_code == 200 and "Thank you!" in sent.text
    # Also through the public API routing, with the token in a query string.
    await client.get(f"/api/clients/deals?token={token}")
    logging.getLogger("zabota.test").warning("the client opened /q/%s", token)   # our own lines too

    gateway_log = json_log()
    assert "HTTP Request:" in gateway_log and "/questionnaire/" + REDACTED in gateway_log   # it was logged…
    signature = token.split(".")[-1]
    assert token not in gateway_log and signature not in gateway_log   # …without the token
    # The clients service (its own process, the same logging set-up) logged no token either.
    service_logs = "".join(p.read_text() for p in (tmp_path / "services").glob("*/service.log"))
    assert service_logs and token not in service_logs and signature not in service_logs


def test_issue8_9_seed_script_takes_its_token_from_the_environment() -> None:
    script = ROOT / "scripts" / "seed_demo.py"
    assert "dev-token" not in script.read_text()
    env = {"PATH": "/usr/bin:/bin"}
    missing = subprocess.run([sys.executable, str(script), "--gateway", "http://127.0.0.1:9"], env=env,
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode != 0 and "ZABOTA_API_TOKEN" in missing.stderr
    unreachable = subprocess.run([sys.executable, str(script), "--gateway", "http://127.0.0.1:9"],
                                 env={**env, "ZABOTA_API_TOKEN": "tok-from-env-123,second"},
                                 capture_output=True, text=True, timeout=60)
    assert unreachable.returncode != 0 and "no answer" in unreachable.stderr
    assert "tok-from-env-123" not in unreachable.stdout + unreachable.stderr
