"""Issue 14 §"Manifests you can trust without a cluster": every overlay rendered with `kubectl kustomize`,
validated offline against the Kubernetes OpenAPI schemas (the PyPI package kubernetes-validate, strict:
an unknown or misspelt field fails), and the production overlay checked for what an SRE relies on:
hardened pods, probes, a PDB and an HPA per service, NetworkPolicies that let a service reach only NATS,
its database and the collector, migrations as one Job per release, the 3-node NATS, monitoring.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
OVERLAYS = ["base", "overlays/dev", "overlays/prod"]
SERVICES = {"clients": 8001, "content": 8002, "engagement": 8003, "payroll": 8004, "gateway": 8000}
KUBERNETES_VERSION = "1.30.0"  # the oldest minor still supported upstream when this was written
# Custom resources of the prometheus-operator: kubernetes-validate ships only the core API schemas, so these
# are skipped from the OpenAPI validation by name, and checked field by field in the monitoring tests below.
CRD_KINDS = {
    "ServiceMonitor": "monitoring.coreos.com/v1 CRD (prometheus-operator): no schema in kubernetes-validate; "
                      "checked by test_issue14_a_servicemonitor_per_service_scrapes_metrics",
    "PrometheusRule": "monitoring.coreos.com/v1 CRD (prometheus-operator): no schema in kubernetes-validate; "
                      "checked by test_issue14_alert_rules_cover_the_issue_list",
}
METRICS = ["zabota_outbox_backlog", "zabota_outbox_oldest_age_seconds", "zabota_consumer_pending",
           "zabota_dead_letters_total", "zabota_timer_backlog", "zabota_timer_lateness_seconds", "zabota_ready",
           "http_server_duration_seconds"]

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None,
                                reason="kubectl not installed (apt-get install kubectl) — renders kustomize")


@functools.cache
def _render(overlay: str) -> tuple[dict, ...]:
    result = subprocess.run(["kubectl", "kustomize", str(DEPLOY / overlay)], check=False,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return tuple(d for d in yaml.safe_load_all(result.stdout) if d)


def render(overlay: str) -> list[dict]:
    return copy.deepcopy(list(_render(overlay)))


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def config(docs: list[dict]) -> dict[str, str]:
    [cm] = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("zabota-config")]
    return cm["data"]


# ---------------------------------------------------------------- offline schema validation

@pytest.mark.parametrize("overlay", OVERLAYS)
def test_issue14_every_overlay_validates_against_the_kubernetes_openapi_schemas(overlay: str) -> None:
    skipped, errors = [], []
    for doc in render(overlay):
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] in CRD_KINDS:
            skipped.append(name)
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{name}: {'.'.join(map(str, exc.path))}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError:
            errors.append(f"{name}: no schema and not a known CRD (add it to CRD_KINDS with a reason)")
    assert not errors, "\n".join(errors)
    if overlay == "overlays/prod":
        assert sorted(skipped) == sorted([f"ServiceMonitor/{s}" for s in SERVICES] + ["PrometheusRule/zabota"])


def test_issue14_offline_validation_rejects_a_misspelt_field() -> None:
    """The validator is strict: a typo that kubectl apply would silently drop fails here."""
    deployment = copy.deepcopy(by_kind(render("overlays/prod"), "Deployment")["clients"])
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    deployment = copy.deepcopy(by_kind(render("overlays/prod"), "Deployment")["clients"])
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


# ---------------------------------------------------------------- hardened workloads

def _workloads(docs: list[dict]) -> dict[str, dict]:
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in docs
            if d["kind"] in ("Deployment", "StatefulSet", "Job")}


def test_issue14_prod_workloads_are_hardened() -> None:
    workloads = _workloads(render("overlays/prod"))
    assert len(workloads) >= 5 + 5 + 2  # services, migration Jobs, NATS + its stream Job
    for name, workload in workloads.items():
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod.get("automountServiceAccountToken") is False, name
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for container in pod["containers"]:
            where = f"{name}/{container['name']}"
            sc = container["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["capabilities"]["drop"] == ["ALL"], where
            assert not sc["capabilities"].get("add"), where
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), where
            assert "memory" in resources["limits"], where
            for mount in container.get("volumeMounts", []):
                # What must be written goes to an emptyDir or a PVC; configuration is mounted read-only.
                volume = volumes.get(mount["name"])
                kinds = set(volume) - {"name"} if volume else {"persistentVolumeClaim"}  # volumeClaimTemplates
                assert kinds & {"emptyDir", "persistentVolumeClaim", "configMap", "secret"}, where


def test_issue14_prod_services_have_probes_writable_tmp_pdb_and_hpa() -> None:
    docs = render("overlays/prod")
    deployments, pdbs, hpas = by_kind(docs, "Deployment"), by_kind(docs, "PodDisruptionBudget"), \
        by_kind(docs, "HorizontalPodAutoscaler")
    for service, port in SERVICES.items():
        deployment = deployments[service]
        pod = deployment["spec"]["template"]["spec"]
        [container] = pod["containers"]
        assert container["startupProbe"]["httpGet"]["path"] == "/health/live", service
        assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready", service
        assert container["livenessProbe"]["httpGet"]["path"] == "/health/live", service
        assert container["ports"][0]["containerPort"] == port
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert "emptyDir" in {v["name"]: v for v in pod["volumes"]}[mounts["/tmp"]], service
        labels = pod_labels(deployment)
        assert pdbs[service]["spec"]["selector"]["matchLabels"].items() <= labels.items(), service
        assert pdbs[service]["spec"]["minAvailable"] == 1
        assert deployment["spec"]["replicas"] >= 2
        target = hpas[service]["spec"]["scaleTargetRef"]
        assert (target["kind"], target["name"]) == ("Deployment", service)
        assert hpas[service]["spec"]["minReplicas"] >= 2


def test_issue14_migrations_run_once_per_release_in_a_job_per_service() -> None:
    docs = render("overlays/prod")
    jobs, deployments = by_kind(docs, "Job"), by_kind(docs, "Deployment")
    assert config(docs)["ZABOTA_MIGRATE_ON_START"] == "0", "replicas must not migrate at start"
    for service in SERVICES:
        job = jobs[f"migrate-{service}"]
        [container] = job["spec"]["template"]["spec"]["containers"]
        assert container["command"] == ["python", "-m", "shared.migrate", "upgrade", service]
        # The same image (same release) as the service it migrates, and the same database.
        [svc_container] = deployments[service]["spec"]["template"]["spec"]["containers"]
        assert container["image"] == svc_container["image"]
        env = {e["name"]: e for e in container["env"]}
        assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"] == f"{service.upper()}_DATABASE_URL"
        assert job["spec"]["template"]["spec"]["restartPolicy"] in ("OnFailure", "Never")


# ---------------------------------------------------------------- NATS

def test_issue14_prod_runs_a_three_node_jetstream_cluster_with_replicated_streams() -> None:
    docs = render("overlays/prod")
    nats = by_kind(docs, "StatefulSet")["nats"]
    assert nats["spec"]["replicas"] == 3
    pod = nats["spec"]["template"]["spec"]
    [term] = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"].items() <= pod_labels(nats).items()
    assert by_kind(docs, "PodDisruptionBudget")["nats"]["spec"]["maxUnavailable"] == 1
    [nats_cm] = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("nats-config")]
    conf = nats_cm["data"]["nats.conf"]
    routes = re.findall(r"nats://(nats-\d)\.nats-headless:6222", conf)
    assert routes == ["nats-0", "nats-1", "nats-2"]
    assert "include ./accounts.conf" in conf and "accounts.conf" in nats_cm["data"]
    headless = by_kind(docs, "Service")["nats-headless"]
    assert headless["spec"]["clusterIP"] == "None" and nats["spec"]["serviceName"] == "nats-headless"
    assert {p["port"] for p in headless["spec"]["ports"]} >= {4222, 6222}
    # The services create their streams with this many replicas (shared.bus reads ZABOTA_STREAM_REPLICAS).
    assert config(docs)["ZABOTA_STREAM_REPLICAS"] == "3"
    assert config(render("overlays/dev"))["ZABOTA_STREAM_REPLICAS"] == "1"
    assert json.loads(by_kind(docs, "ConfigMap")[next(n for n in by_kind(docs, "ConfigMap")
                                                     if n.startswith("nats-partners-stream"))]
                      ["data"]["public-stream.json"])["num_replicas"] == 3


def test_issue14_services_connect_to_nats_as_the_services_account_user() -> None:
    docs = render("overlays/prod")
    assert config(docs)["NATS_ADDRESS"] == "nats:4222"
    for service in SERVICES:
        [container] = by_kind(docs, "Deployment")[service]["spec"]["template"]["spec"]["containers"]
        names = [e["name"] for e in container["env"]]
        env = {e["name"]: e for e in container["env"]}
        assert env["NATS_SERVICES_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": "nats-auth", "key": "NATS_SERVICES_PASSWORD"}
        assert env["NATS_URL"]["value"] == "nats://zabota:$(NATS_SERVICES_PASSWORD)@$(NATS_ADDRESS)"
        # Kubernetes expands $(VAR) only from variables defined before it.
        assert names.index("NATS_SERVICES_PASSWORD") < names.index("NATS_URL")


# ---------------------------------------------------------------- NetworkPolicies

def pod_labels(workload: dict) -> dict[str, str]:
    return workload["spec"]["template"]["metadata"]["labels"]


def _selects(selector: dict | None, labels: dict[str, str]) -> bool:
    if selector is None:
        return False
    assert set(selector) <= {"matchLabels", "matchExpressions"}, "the evaluator knows these two only"
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In", "the evaluator knows the operator In only"
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return selector.get("matchLabels", {}).items() <= labels.items()


def _peer_matches(peer: dict, policy_ns: str, pod: tuple[str, dict]) -> bool:
    namespace, labels = pod
    if "ipBlock" in peer:
        return namespace == "<outside>"
    ns_ok = _selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": namespace}) \
        if "namespaceSelector" in peer else namespace == policy_ns
    pod_ok = _selects(peer["podSelector"], labels) if "podSelector" in peer else True
    return ns_ok and pod_ok


def _port_ok(rule: dict, port: int) -> bool:
    return "ports" not in rule or any(p.get("port") == port for p in rule["ports"])


def allowed(policies: list[dict], src: tuple[str, dict], dst: tuple[str, dict], port: int) -> bool:
    """Whether NetworkPolicies (namespace `zabota`) let `src` open a TCP connection to `dst`:`port`."""
    def side(direction: str, pod: tuple[str, dict], other: tuple[str, dict]) -> bool:
        if pod[0] != "zabota":
            return True  # policies of other namespaces are not ours
        selecting = [p for p in policies if direction in p["spec"]["policyTypes"]
                     and _selects(p["spec"]["podSelector"], pod[1])]
        if not selecting:
            return True
        key, peers = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
        return any(_port_ok(rule, port) and (peers not in rule or any(
            _peer_matches(peer, "zabota", other) for peer in rule[peers]))
            for p in selecting for rule in p["spec"].get(key, []))

    return side("Egress", src, dst) and side("Ingress", dst, src)


def test_issue14_network_policies_services_reach_only_nats_database_and_collector() -> None:
    docs = render("overlays/prod")
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    deployments = by_kind(docs, "Deployment")
    pods = {name: ("zabota", pod_labels(d)) for name, d in deployments.items() if name in SERVICES}
    nats = ("zabota", pod_labels(by_kind(docs, "StatefulSet")["nats"]))
    collector = ("zabota", pod_labels(deployments["otel-collector"]))   # components/tracing
    jaeger = ("zabota", pod_labels(deployments["jaeger"]))
    database = ("<outside>", {})  # a managed PostgreSQL
    internet = ("<outside>", {})
    ingress_controller = ("ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"})
    prometheus = ("monitoring", {"app.kubernetes.io/name": "prometheus"})
    for service, port in SERVICES.items():
        pod = pods[service]
        assert allowed(policies, pod, nats, 4222), f"{service} -> NATS"
        assert allowed(policies, pod, database, 5432), f"{service} -> its database"
        assert allowed(policies, pod, collector, 4318), f"{service} -> collector"
        assert not allowed(policies, pod, jaeger, 4317), f"{service} -> Jaeger (spans go through the collector)"
        assert not allowed(policies, pod, nats, 6222), f"{service} -> NATS routes"
        # the channels' APIs, mail servers and feeds: engagement and content only (issue 10, 11, 13)
        reaches_channels = service in ("engagement", "content")
        for channel_port in (443, 993, 465, 587):
            assert allowed(policies, pod, internet, channel_port) is reaches_channels, f"{service} -> internet"
        assert not allowed(policies, pod, internet, 22), f"{service} -> internet ssh"
        assert allowed(policies, prometheus, pod, port), f"Prometheus scrapes {service}"
        for other, other_port in SERVICES.items():
            if other != service:
                expected = service == "gateway"  # only the gateway calls the services
                assert allowed(policies, pod, pods[other], other_port) is expected, f"{service} -> {other}"
        assert allowed(policies, ingress_controller, pod, port) is (service == "gateway"), \
            f"Ingress -> {service}"
    for job in ("migrate-clients", "migrate-payroll"):
        labels = pod_labels(by_kind(docs, "Job")[job])
        assert allowed(policies, ("zabota", labels), database, 5432)
        assert not allowed(policies, ("zabota", labels), pods["clients"], 8001)
    # NATS itself: clients from the workloads, routes only between its servers; from outside the cluster
    # (the partners' addresses behind the LoadBalancer nats-partners) the client port only.
    assert allowed(policies, nats, nats, 6222)
    assert not allowed(policies, ingress_controller, nats, 4222)
    assert allowed(policies, internet, nats, 4222) and not allowed(policies, internet, nats, 6222)
    assert not allowed(policies, internet, nats, 8222)
    # The trace backend: spans only from the collector; its UI from the ingress controller (or port-forward).
    assert allowed(policies, collector, jaeger, 4317)
    assert allowed(policies, ingress_controller, jaeger, 16686)
    assert not allowed(policies, ingress_controller, jaeger, 4317)


def test_issue14_dev_network_policies_let_services_reach_the_in_cluster_database_and_collector() -> None:
    docs = render("overlays/dev")
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    clients = ("zabota", pod_labels(by_kind(docs, "Deployment")["clients"]))
    postgres = ("zabota", pod_labels(by_kind(docs, "StatefulSet")["postgres"]))
    collector = ("zabota", pod_labels(by_kind(docs, "Deployment")["otel-collector"]))
    nats = ("zabota", pod_labels(by_kind(docs, "StatefulSet")["nats"]))
    stranger = ("zabota", {"app.kubernetes.io/name": "debug-shell"})
    assert allowed(policies, clients, postgres, 5432) and allowed(policies, clients, collector, 4318)
    assert allowed(policies, clients, nats, 4222)
    for target, port in ((postgres, 5432), (collector, 4318), (nats, 4222)):
        assert not allowed(policies, stranger, target, port), target


# ---------------------------------------------------------------- monitoring

def test_issue14_a_servicemonitor_per_service_scrapes_metrics() -> None:
    docs = render("overlays/prod")
    monitors, services = by_kind(docs, "ServiceMonitor"), by_kind(docs, "Service")
    assert set(monitors) == set(SERVICES)
    for name, monitor in monitors.items():
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        service = services[name]
        assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
        [endpoint] = monitor["spec"]["endpoints"]
        assert endpoint["path"] == "/metrics"
        assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
        assert set(endpoint) <= {"port", "path", "interval", "scrapeTimeout"}


def test_issue14_alert_rules_cover_the_issue_list() -> None:
    [rule] = by_kind(render("overlays/prod"), "PrometheusRule").values()
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    assert re.search(r"zabota_outbox_oldest_age_seconds\) > 60$", alerts["ZabotaOutboxStale"]["expr"])
    assert "deriv(zabota_consumer_pending[5m])" in alerts["ZabotaConsumerLagGrowing"]["expr"]
    assert alerts["ZabotaConsumerLagGrowing"]["for"] == "5m"
    assert "increase(zabota_dead_letters_total" in alerts["ZabotaDeadLetter"]["expr"]
    assert alerts["ZabotaDeadLetter"]["expr"].endswith("> 0")
    assert re.search(r"zabota_timer_lateness_seconds\) > 60$", alerts["ZabotaTimerLate"]["expr"])
    assert "zabota_ready) == 0" in alerts["ZabotaNotReady"]["expr"]
    for name, alert in alerts.items():
        assert set(alert) <= {"alert", "expr", "for", "labels", "annotations"}, name
        assert alert["labels"]["severity"] in ("warning", "critical"), name
        assert alert["annotations"]["summary"] and alert["annotations"]["description"], name
        assert alert["expr"].count("(") == alert["expr"].count(")"), name


def test_issue14_grafana_dashboard_has_a_panel_per_metric() -> None:
    docs = render("overlays/prod")
    cm = by_kind(docs, "ConfigMap")["zabota-grafana-dashboard"]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(cm["data"]["zabota-dashboard.json"])
    assert dashboard == json.loads((DEPLOY / "components/monitoring/zabota-dashboard.json").read_text("utf-8"))
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for metric in METRICS:
        assert metric in exprs, f"no panel for {metric}"
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


def test_issue14_per_release_jobs_are_replaced_before_and_run_before_the_deployments_roll() -> None:
    docs = render("overlays/prod")
    jobs = by_kind(docs, "Job")
    assert set(jobs) == {f"migrate-{s}" for s in SERVICES} | {"nats-partners-stream"}
    for name, job in jobs.items():
        meta = job["metadata"]
        assert meta["labels"]["zabota.io/per-release"] == "true", name  # `kubectl delete job -l ...`
        assert meta["annotations"]["argocd.argoproj.io/hook-delete-policy"] == "BeforeHookCreation", name
        assert meta["annotations"]["argocd.argoproj.io/sync-wave"] == "1", name
    for service in SERVICES:
        deployment = by_kind(docs, "Deployment")[service]
        assert deployment["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"] == "2", service


def test_issue14_every_nats_secret_the_config_needs_is_provided_in_dev_and_documented() -> None:
    """nats-server refuses to start on an undefined $VARIABLE: each must be a key of the Secret nats-auth."""
    nats_dir = DEPLOY / "components" / "nats"
    needed = set(re.findall(r"\$(NATS_[A-Z0-9_]+)", (nats_dir / "accounts.conf").read_text("utf-8")
                            + (nats_dir / "nats.conf").read_text("utf-8")))
    assert {"NATS_SYS_PASSWORD", "NATS_SERVICES_PASSWORD", "NATS_PARTNERS_ADMIN_PASSWORD"} <= needed
    [secret] = [d for d in render("overlays/dev") if d["kind"] == "Secret"
                and d["metadata"]["name"].startswith("nats-auth")]
    assert needed == set(secret["data"])
    readme = (DEPLOY / "README.md").read_text("utf-8")
    for name in needed:
        assert name in readme, f"deploy/README.md does not say to create {name}"
    nats = by_kind(render("overlays/prod"), "StatefulSet")["nats"]
    [container] = nats["spec"]["template"]["spec"]["containers"]
    assert container["envFrom"] == [{"secretRef": {"name": "nats-auth"}}]


# ---------------------------------------------------------------- tracing (components/tracing)

@pytest.mark.parametrize("overlay", ["overlays/dev", "overlays/prod"])
def test_issue14_tracing_collector_exports_to_jaeger_and_services_point_at_the_collector(overlay: str) -> None:
    docs = render(overlay)
    deployments = by_kind(docs, "Deployment")
    assert {"otel-collector", "jaeger"} <= set(deployments)
    [collector_cm] = [d for d in docs if d["kind"] == "ConfigMap"
                      and d["metadata"]["name"].startswith("otel-collector-config")]
    collector = yaml.safe_load(collector_cm["data"]["config.yaml"])
    pipeline = collector["service"]["pipelines"]["traces"]
    assert pipeline["receivers"] == ["otlp"] and "batch" in pipeline["processors"]
    [exporter] = pipeline["exporters"]
    assert collector["exporters"][exporter]["endpoint"] == "jaeger:4317"
    assert set(collector["receivers"]["otlp"]["protocols"]) == {"grpc", "http"}
    jaeger_service = by_kind(docs, "Service")["jaeger"]
    assert {p["port"] for p in jaeger_service["spec"]["ports"]} == {4317, 16686}
    settings = config(docs)
    assert settings["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
    trace_url = settings["ZABOTA_TRACE_URL"]
    assert "{deal_id}" in trace_url and "/search?" in trace_url and "zabota.deal_id" in trace_url.replace("%22", "")
    for name in ("otel-collector", "jaeger"):
        pod = deployments[name]["spec"]["template"]["spec"]
        [container] = pod["containers"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"], name
        assert {"startupProbe", "readinessProbe", "livenessProbe"} <= set(container), name
        assert container["resources"]["limits"]["memory"], name
    volumes = {v["name"]: v for v in deployments["jaeger"]["spec"]["template"]["spec"]["volumes"]}
    if overlay == "overlays/prod":   # traces survive a restart there
        assert volumes["data"]["persistentVolumeClaim"]["claimName"] in by_kind(docs, "PersistentVolumeClaim")
        assert settings["ZABOTA_TRACE_URL"].startswith("https://")
    else:
        assert "emptyDir" in volumes["data"]


# ---------------------------------------------------------------- partners from outside (prod)

def test_issue14_prod_partners_reach_nats_through_a_loadbalancer_with_tls_required() -> None:
    docs = render("overlays/prod")
    service = by_kind(docs, "Service")["nats-partners"]
    assert service["spec"]["type"] == "LoadBalancer"
    assert service["spec"]["selector"] == {"app.kubernetes.io/name": "nats"}
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(4222, "client")]
    assert service["spec"]["loadBalancerSourceRanges"]
    # The servers' tls.conf is the one tests/deploy/test_nats_accounts.py runs for real.
    [nats_cm] = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("nats-config")]
    shipped = (DEPLOY / "overlays" / "prod" / "nats-tls.conf").read_text("utf-8")
    assert nats_cm["data"]["tls.conf"] == shipped and "tls {" in shipped and "allow_non_tls" not in shipped
    assert "include ./tls.conf" in nats_cm["data"]["nats.conf"]
    nats_pod = by_kind(docs, "StatefulSet")["nats"]["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m["name"] for m in nats_pod["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in nats_pod["volumes"]}
    assert volumes[mounts["/etc/nats-tls"]]["secret"]["secretName"] == "nats-partners-tls"
    # Every client of NATS in the cluster trusts the agency's CA (TLS is required of everyone).
    clients = [*(d for d in docs if d["kind"] == "Deployment"
                 and d["metadata"]["labels"].get("app.kubernetes.io/part-of") == "zabota"),
               by_kind(docs, "Job")["nats-partners-stream"]]
    assert len(clients) == len(SERVICES) + 1
    for workload in clients:
        pod = workload["spec"]["template"]["spec"]
        env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
        assert env["NATS_CA"] == "/etc/nats-ca/ca.crt", workload["metadata"]["name"]
        assert any(v.get("configMap", {}).get("name") == "nats-ca" for v in pod["volumes"])
    # dev: no TLS, no LoadBalancer.
    dev = render("overlays/dev")
    assert "nats-partners" not in by_kind(dev, "Service")
    [dev_cm] = [d for d in dev if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("nats-config")]
    assert "tls {" not in dev_cm["data"]["tls.conf"]
