"""A service process shuts down cleanly on SIGTERM (stop accepting, finish, flush the outbox, drain NATS)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request

from shared.testing import free_port


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def test_service_process_stops_promptly_and_cleanly_on_sigterm(tmp_path, nats_server) -> None:
    port = free_port()
    env = {**os.environ, "ZABOTA_VAR_DIR": str(tmp_path), "NATS_URL": nats_server.url, "PAYROLL_PORT": str(port),
           "ZABOTA_DEMO": "1"}   # development secrets are accepted only in demo mode (issue 8 item 6)
    env.pop("DATABASE_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "payroll"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while not _ready(port):
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "payroll never became ready"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)  # well inside a Kubernetes grace period
        output = proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "Application shutdown complete" in output
    assert "Traceback" not in output
