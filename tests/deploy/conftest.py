"""A real 3-node NATS JetStream cluster running deploy/components/nats/nats.conf + accounts.conf (issue 14).

The shipped files are used as they are; only what differs between a pod and a test process is
substituted: listen/monitor/cluster ports, the store and pid paths, and the route hosts
(`nats-N.nats-headless:6222` -> `127.0.0.1:<route port of node N>`). Secrets come from the environment,
as in the pod (the Secret nats-auth).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import nats
import nats.errors
import pytest
from nats.js.api import StreamConfig
from nats.js.errors import NoStreamResponseError
from shared.bus import STREAMS, ensure_streams
from shared.events.clients import DealPaid
from shared.testing import nats_binary

ROOT = Path(__file__).resolve().parents[2]
NATS_DIR = ROOT / "deploy" / "components" / "nats"

STREAM_REPLICAS = 3  # ZABOTA_STREAM_REPLICAS in the prod overlay
PASSWORDS = {
    "NATS_SYS_PASSWORD": "sys-test",
    "NATS_SERVICES_PASSWORD": "services-test",
    "NATS_PARTNERS_ADMIN_PASSWORD": "partners-admin-test",
    "NATS_PARTNER_ACME_PASSWORD": "acme-test",
}


def render_server_conf(text: str, *, client: int, monitor: int, cluster: int, routes: list[int],
                       store: Path, pid: Path) -> str:
    """nats.conf of one test node: the shipped text with ports, paths and route hosts substituted."""
    subs = [
        (r"(?m)^listen: 0\.0\.0\.0:4222$", f"listen: 127.0.0.1:{client}"),
        (r"(?m)^http: 0\.0\.0\.0:8222$", f"http: 127.0.0.1:{monitor}"),
        (r"(?m)^pid_file: /var/run/nats/nats\.pid$", f"pid_file: {json.dumps(str(pid))}"),
        (r"(?m)^(\s+)store_dir: /data$", rf"\g<1>store_dir: {json.dumps(str(store))}"),
        (r"(?m)^(\s+)listen: 0\.0\.0\.0:6222$", rf"\g<1>listen: 127.0.0.1:{cluster}"),
    ]
    for pattern, repl in subs:
        text, n = re.subn(pattern, repl, text)
        assert n == 1, f"nats.conf no longer has the line {pattern}"
    for index, port in enumerate(routes):
        text, n = re.subn(rf"nats://nats-{index}\.nats-headless:6222", f"nats://127.0.0.1:{port}", text)
        assert n == 1, f"nats.conf no longer routes to nats-{index}"
    return text


@dataclass
class NatsNode:
    name: str
    client: int
    monitor: int
    conf: Path
    proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.client}"


@dataclass
class NatsCluster:
    nodes: list[NatsNode] = field(default_factory=list)
    ca_file: Path | None = None   # the CA of the client port's TLS (nats_cluster_tls)

    def url(self, user: str, password: str) -> list[str]:
        return [f"nats://{user}:{password}@{n.address}" for n in self.nodes]

    @property
    def services_url(self) -> list[str]:
        return self.url("zabota", PASSWORDS["NATS_SERVICES_PASSWORD"])

    @property
    def partners_admin_url(self) -> list[str]:
        return self.url("partners-admin", PASSWORDS["NATS_PARTNERS_ADMIN_PASSWORD"])

    @property
    def acme_url(self) -> list[str]:
        return self.url("acme", PASSWORDS["NATS_PARTNER_ACME_PASSWORD"])

    def start_node(self, node: NatsNode, log: Path) -> None:
        env = {**os.environ, **PASSWORDS, "POD_NAME": node.name}
        with log.open("ab") as out:
            node.proc = subprocess.Popen([nats_binary(), "-c", str(node.conf)], env=env,
                                         stdout=out, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        for node in self.nodes:
            if node.proc and node.proc.poll() is None:
                node.proc.terminate()
        for node in self.nodes:
            if node.proc:
                try:
                    node.proc.wait(10)
                except subprocess.TimeoutExpired:
                    node.proc.kill()
                    node.proc.wait()

    def wait_healthy(self, logs: list[Path], timeout: float = 90) -> None:
        """Until every node answers /healthz and the JetStream meta leader sees both other peers current
        (before that, a stream with 3 replicas is refused: "no suitable peers for placement")."""
        deadline = time.monotonic() + timeout
        pending = list(self.nodes)
        while time.monotonic() < deadline:
            for node in self.nodes:
                assert node.proc and node.proc.poll() is None, (
                    f"{node.name} exited:\n" + "\n".join(p.read_text(errors="replace")[-3000:] for p in logs))
            for node in list(pending):
                if _get(node, "/healthz") is not None:
                    pending.remove(node)
            if not pending and any(_meta_complete(n.name, _get(n, "/jsz")) for n in self.nodes):
                return
            time.sleep(0.1)
        raise AssertionError("NATS cluster not healthy:\n" + "\n".join(
            p.read_text(errors="replace")[-3000:] for p in logs))


def _get(node: NatsNode, path: str) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{node.monitor}{path}", timeout=1) as response:
            return json.loads(response.read()) if response.status == 200 else None
    except (OSError, ValueError):
        return None


def _meta_complete(name: str, jsz: dict | None) -> bool:
    """`name` is the meta leader and sees both other servers current and online."""
    meta = (jsz or {}).get("meta_cluster") or {}
    replicas = meta.get("replicas") or []
    return (meta.get("leader") == name and len(replicas) == 2
            and all(r.get("current") and not r.get("offline") for r in replicas))


def distinct_ports(n: int) -> list[int]:
    """n free ports, all different (free_port() called twice may hand out the same one)."""
    sockets = []
    try:
        for _ in range(n):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@pytest.fixture
def nats_cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    """Three nats-server processes forming the cluster `zabota` with the shipped accounts."""
    shutil.copy(NATS_DIR / "tls.conf", tmp_path / "tls.conf")
    yield from _cluster(tmp_path)


@pytest.fixture
def nats_cluster_tls(tmp_path: Path) -> Iterator[NatsCluster]:
    """The same cluster with the prod overlay's tls.conf (TLS on the client port for the partners), its
    certificate paths pointed at a test CA and server certificate for 127.0.0.1 (`cluster.ca_file`)."""
    ca_file, cert_file, key_file = make_test_pki(tmp_path / "pki")
    text = (ROOT / "deploy" / "overlays" / "prod" / "nats-tls.conf").read_text("utf-8")
    for shipped, local in (("/etc/nats-tls/tls.crt", cert_file), ("/etc/nats-tls/tls.key", key_file)):
        assert shipped in text, f"nats-tls.conf no longer reads {shipped}"
        text = text.replace(shipped, str(local))
    (tmp_path / "tls.conf").write_text(text, "utf-8")
    for cluster in _cluster(tmp_path):
        cluster.ca_file = ca_file
        yield cluster


def make_test_pki(folder: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 / localhost signed by it (PEM files)."""
    from datetime import timedelta
    from ipaddress import IPv4Address

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Zabota test partners CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
          .not_valid_after(now + timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nats.partners.test")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(IPv4Address("127.0.0.1"))]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = folder / "ca.pem", folder / "server.pem", folder / "server-key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


def _cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    shutil.copy(NATS_DIR / "accounts.conf", tmp_path / "accounts.conf")
    text = (NATS_DIR / "nats.conf").read_text("utf-8")
    ports = distinct_ports(9)
    routes = ports[0:3]
    cluster = NatsCluster()
    logs = []
    for index in range(3):
        node = NatsNode(name=f"nats-{index}", client=ports[3 + index], monitor=ports[6 + index],
                        conf=tmp_path / f"nats-{index}.conf")
        node.conf.write_text(render_server_conf(
            text, client=node.client, monitor=node.monitor, cluster=routes[index], routes=routes,
            store=tmp_path / f"store-{index}", pid=tmp_path / f"nats-{index}.pid"), "utf-8")
        cluster.nodes.append(node)
    try:
        for node in cluster.nodes:
            log = tmp_path / f"{node.name}.log"
            logs.append(log)
            cluster.start_node(node, log)
        cluster.wait_healthy(logs)
        yield cluster
    finally:
        cluster.stop()


# ---------------------------------------------------------------- clients of the cluster

class Conn:
    """A client connection that records the server's asynchronous errors (permission violations)."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.nc = None
        self._error = asyncio.Event()

    async def open(self, url: list[str], **kwargs) -> Conn:
        async def on_error(exc: Exception) -> None:
            self.errors.append(str(exc))
            self._error.set()

        self.nc = await nats.connect(url, connect_timeout=5, allow_reconnect=False, error_cb=on_error, **kwargs)
        return self

    async def violation(self, text: str, timeout: float = 10) -> str:
        """The permissions violation naming `text` that the server reported (waits for its -ERR, bounded)."""
        await self.nc.flush()
        async with asyncio.timeout(timeout):
            while True:
                for err in self.errors:
                    if "permissions violation" in err.lower() and text.lower() in err.lower():
                        return err
                self._error.clear()
                await self._error.wait()

    async def close(self) -> None:
        if self.nc is not None and not self.nc.is_closed:
            await self.nc.close()


async def services(url: list[str], **kwargs) -> Conn:
    """The services' connection, with the streams they create at start (replicas from ZABOTA_STREAM_REPLICAS)."""
    conn = await Conn().open(url, **kwargs)
    js = conn.nc.jetstream(timeout=30)
    await ensure_streams(js, STREAM_REPLICAS)   # what Bus.connect does, waiting out "no suitable peers"
    for name in STREAMS:
        await _stream_led(js, name)
    return conn


async def _stream_led(js, name: str, timeout: float = 30) -> None:
    """Until the replicated stream has elected its leader (a publish before that gets no responder)."""
    async with asyncio.timeout(timeout):
        while True:
            info = await answered(lambda: js.stream_info(name))
            if info.cluster and info.cluster.leader and all(r.current for r in info.cluster.replicas or []):
                return
            await asyncio.sleep(0.05)


async def public_stream(url: list[str], **kwargs) -> None:
    """What the nats-partners-stream Job does: create PUBLIC in PARTNERS from the shipped public-stream.json."""
    config = StreamConfig.from_response(json.loads((NATS_DIR / "public-stream.json").read_text("utf-8")))
    conn = await Conn().open(url, **kwargs)
    js = conn.nc.jetstream(timeout=10)
    await answered(lambda: js.add_stream(config))
    await _stream_led(js, config.name)
    await conn.close()


def deal_paid(deal_id: str) -> DealPaid:
    return DealPaid(deal_id=deal_id, client_id="c-1", payment_id="p-1", external_id="ext-1",
                    amount=Decimal("150000.00"), currency="KZT", paid_at=datetime(2026, 12, 1, 9, tzinfo=UTC),
                    service_kind="account_management", manager="aigerim")


async def answered(call, *, bound: float = 90):
    """`call()` (a JetStream API request) until it is answered, bounded. A young cluster whose meta or
    stream leader moves under load can drop a request without any reply (seen in CI: one consumer
    creation timed out at 30 s); every request here is idempotent, so asking again is what a client does."""
    async with asyncio.timeout(bound):
        while True:
            try:
                return await call()
            except (nats.errors.TimeoutError, NoStreamResponseError):
                await asyncio.sleep(0.2)


async def publish(conn: Conn, subject: str, payload: bytes, msg_id: str) -> None:
    """Publish as the relay does: a stream whose leader is moving (a young cluster under load) answers
    nobody for a moment — try again, bounded (the same Nats-Msg-Id, so never twice)."""
    js = conn.nc.jetstream(timeout=10)
    await answered(lambda: js.publish(subject, payload, headers={"Nats-Msg-Id": msg_id}))


@pytest.fixture
def kit() -> SimpleNamespace:
    """The helpers above, for the tests of this folder (pytest's importlib mode: no sibling imports)."""
    return SimpleNamespace(Conn=Conn, services=services, public_stream=public_stream, deal_paid=deal_paid,
                           publish=publish, answered=answered, STREAM_REPLICAS=STREAM_REPLICAS, PASSWORDS=PASSWORDS)
