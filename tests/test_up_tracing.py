"""`make up TRACING=1` (issue 14): which trace backend scripts/up.py starts, and what it tells the services.

The backends themselves are not started here (Jaeger ships in no registry this project uses; Phoenix is a
600 MB install): a stand-in executable answering HTTP plays the found backend, so the wiring is what is
tested — the services' OTEL_EXPORTER_OTLP_ENDPOINT and ZABOTA_TRACE_URL, the clear refusal when nothing
can start, and an existing collector being used as it is."""

from __future__ import annotations

import argparse
import importlib.util
import os
import stat
import sys
from pathlib import Path

import pytest
from shared.telemetry import trace_url

ROOT = Path(__file__).resolve().parents[1]


def load_up():
    spec = importlib.util.spec_from_file_location("zabota_up_script", ROOT / "scripts" / "up.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def up(tmp_path, monkeypatch):
    module = load_up()
    for name in ("JAEGER_BIN", "PHOENIX_BIN", "UV", "OTEL_EXPORTER_OTLP_ENDPOINT", "ZABOTA_TRACE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ZABOTA_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))   # nothing found but what a test puts there
    (tmp_path / "bin").mkdir()
    monkeypatch.setattr(module, "_has_module", lambda name: False)
    supervisor = module.Supervisor(argparse.Namespace(tracing=True, no_seed=True, timeout=30))
    supervisor.log_dir.mkdir(parents=True)
    yield module, supervisor
    supervisor.stop_requested = "test over"
    supervisor.stop_all()


def fake_backend(path: Path, port_env: str | None, port: int | None = None) -> Path:
    """An executable that serves HTTP 200 on the backend's UI port (from its environment, or fixed)."""
    port_expr = f"int(os.environ['{port_env}'])" if port_env else str(port)
    path.write_text(f"#!{sys.executable}\nimport os, http.server\n"
                    "class H(http.server.BaseHTTPRequestHandler):\n"
                    "    def do_GET(self):\n        self.send_response(200); self.end_headers(); self.wfile.write(b'ok')\n"
                    "    def log_message(self, *a): pass\n"
                    f"http.server.HTTPServer(('127.0.0.1', {port_expr}), H).serve_forever()\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def test_tracing_with_nothing_installed_says_what_to_do_and_starts_nothing(up) -> None:
    module, supervisor = up
    assert supervisor.tracing_command() is None
    with pytest.raises(SystemExit) as stop:
        supervisor.start_tracing()
    assert "JAEGER_BIN" in str(stop.value) and "OTEL_EXPORTER_OTLP_ENDPOINT" in str(stop.value)
    assert supervisor.children == []


def test_tracing_prefers_jaeger_then_phoenix_then_installs_phoenix_with_uv(up, tmp_path, monkeypatch) -> None:
    module, supervisor = up
    monkeypatch.setenv("UV", "/opt/uv")
    assert supervisor.tracing_command() == ("phoenix", ["/opt/uv", "tool", "run", "--from",
                                                        f"arize-phoenix=={module.PHOENIX_VERSION}", "phoenix", "serve"])
    monkeypatch.setenv("PHOENIX_BIN", "/opt/phoenix")
    assert supervisor.tracing_command() == ("phoenix", ["/opt/phoenix", "serve"])
    monkeypatch.setenv("JAEGER_BIN", "/opt/jaeger")
    assert supervisor.tracing_command() == ("jaeger", ["/opt/jaeger"])


def test_tracing_starts_the_backend_and_points_the_services_at_it(up, tmp_path, monkeypatch) -> None:
    module, supervisor = up
    monkeypatch.setenv("PHOENIX_BIN", str(fake_backend(tmp_path / "bin" / "phoenix", "PHOENIX_PORT")))
    env = supervisor.start_tracing()
    [child] = supervisor.children
    assert child.name == "phoenix" and child.running
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == supervisor.tracing_ui
    assert (Path(os.environ["ZABOTA_VAR_DIR"]) / "phoenix").is_dir()
    link = trace_url("73ff0001-deal", template=env["ZABOTA_TRACE_URL"])
    assert link.startswith(supervisor.tracing_ui + "/projects/")
    assert "spanFilterCondition=zabota.deal_id%20%3D%3D%20%2773ff0001-deal%27" in link
    supervisor.tracing_env = env   # as run() keeps it
    services = supervisor.service_env("nats://127.0.0.1:4222", {"gateway": 8000})
    assert services["OTEL_EXPORTER_OTLP_ENDPOINT"] == env["OTEL_EXPORTER_OTLP_ENDPOINT"]


def test_tracing_uses_a_collector_already_configured(up, monkeypatch) -> None:
    _module, supervisor = up
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector.example:4318")
    assert supervisor.start_tracing() == {} and supervisor.children == []


def test_jaeger_trace_url_searches_the_deals_tag() -> None:
    module = load_up()
    link = trace_url("73ff", template=module.JAEGER_TRACE_URL)
    assert link.startswith("http://127.0.0.1:16686/search?") and "%22zabota.deal_id%22%3A%2273ff%22" in link
