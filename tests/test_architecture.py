"""The architecture rules of DESIGN.md that code review alone would let slip.

- Services never import each other; `shared/` imports no service (every .py file, parsed with ast).
- Among the workspace packages a service depends only on zabota-shared; shared on none.
- Each service has its Dockerfile, migrations/env.py, src/<svc>/app.py with create_app, __main__.py.
- The Dockerfiles install only their service and run it as `python -m <svc>` on its port.
- Every YAML under deploy/ parses, every kustomization names files that exist, and (with kubectl
  installed) every overlay renders.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml
from shared.settings import DEFAULT_PORTS

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("clients", "content", "engagement", "payroll", "gateway")
SKIP_DIRS = {".venv", "__pycache__", "node_modules", ".pytest_cache", ".ruff_cache", "build", "dist"}


def python_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if not SKIP_DIRS & set(p.relative_to(folder).parts))


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in a file, `importlib.import_module("x")` included."""
    tree = ast.parse(path.read_text("utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__"):
                found.append((node.lineno, node.args[0].value))
    return found


def forbidden_imports(folder: Path, forbidden: set[str]) -> list[str]:
    problems = []
    for path in python_files(folder):
        for line, module in imported_modules(path):
            top = module.split(".")[0]
            if top in forbidden:
                problems.append(f"{path.relative_to(ROOT)}:{line} imports {module!r}")
    return problems


def test_the_workspace_has_exactly_the_five_services() -> None:
    found = {p.parent.name for p in (ROOT / "services").glob("*/pyproject.toml")}
    assert found == set(SERVICES)
    assert set(DEFAULT_PORTS) == set(SERVICES)


@pytest.mark.parametrize("service", SERVICES)
def test_service_imports_no_other_service(service: str) -> None:
    problems = forbidden_imports(ROOT / "services" / service, set(SERVICES) - {service})
    assert not problems, (f"{service} imports another service's package; services talk through NATS events "
                          "(shared.events) or over HTTP only:\n  " + "\n  ".join(problems))


def test_shared_imports_no_service() -> None:
    problems = forbidden_imports(ROOT / "shared", set(SERVICES))
    assert not problems, "shared/ must not import any service:\n  " + "\n  ".join(problems)


# ---------------------------------------------------------------- dependencies

def _pyproject(path: Path) -> dict:
    return tomllib.loads(path.read_text("utf-8"))


def _names(requirements: list[str]) -> set[str]:
    names = set()
    for req in requirements:
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req)
        if match:
            names.add(re.sub(r"[-_.]+", "-", match.group(1)).lower())
    return names


def _all_dependencies(project: dict) -> set[str]:
    deps = _names(project.get("project", {}).get("dependencies", []))
    for extra in project.get("project", {}).get("optional-dependencies", {}).values():
        deps |= _names(extra)
    for group in project.get("dependency-groups", {}).values():
        deps |= _names([g for g in group if isinstance(g, str)])
    return deps


WORKSPACE_PACKAGES = {
    _pyproject(p)["project"]["name"] for p in [ROOT / "shared" / "pyproject.toml",
                                               *sorted((ROOT / "services").glob("*/pyproject.toml"))]
}


@pytest.mark.parametrize("service", SERVICES)
def test_service_depends_only_on_shared_among_workspace_packages(service: str) -> None:
    project = _pyproject(ROOT / "services" / service / "pyproject.toml")
    assert project["project"]["name"] == f"zabota-{service}"
    workspace_deps = _all_dependencies(project) & WORKSPACE_PACKAGES
    assert workspace_deps == {"zabota-shared"}, (
        f"services/{service}/pyproject.toml depends on {sorted(workspace_deps)}; among the workspace's "
        "packages a service may depend on zabota-shared only")
    sources = set(project.get("tool", {}).get("uv", {}).get("sources", {}))
    assert sources & WORKSPACE_PACKAGES <= {"zabota-shared"}


def test_shared_depends_on_no_workspace_package() -> None:
    project = _pyproject(ROOT / "shared" / "pyproject.toml")
    assert not _all_dependencies(project) & (WORKSPACE_PACKAGES - {"zabota-shared"})


# ---------------------------------------------------------------- layout

@pytest.mark.parametrize("service", SERVICES)
def test_service_layout(service: str) -> None:
    base = ROOT / "services" / service
    for rel in ("Dockerfile", "migrations/env.py", f"src/{service}/app.py", f"src/{service}/__main__.py"):
        assert (base / rel).is_file(), f"services/{service}/{rel} is missing"
    tree = ast.parse((base / "src" / service / "app.py").read_text("utf-8"))
    functions = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    assert "create_app" in functions, f"services/{service}/src/{service}/app.py defines no create_app()"


@pytest.mark.parametrize("service", SERVICES)
def test_dockerfile_builds_only_its_service_and_runs_it(service: str) -> None:
    text = (ROOT / "services" / service / "Dockerfile").read_text("utf-8")
    port = DEFAULT_PORTS[service]
    assert f"--package zabota-{service}" in text and "--frozen" in text and "--no-dev" in text
    assert re.search(r"^FROM python:3\.11-slim|^ARG PYTHON_IMAGE=python:3\.11-slim", text, re.MULTILINE)
    assert re.search(rf"^EXPOSE {port}$", text, re.MULTILINE), f"EXPOSE {port} missing"
    assert f'CMD ["python", "-m", "{service}"]' in text
    assert re.search(r"^HEALTHCHECK ", text, re.MULTILINE)
    assert re.search(r"^USER (?!root|0\b)", text, re.MULTILINE), "the runtime must not run as root"
    assert f"COPY services/{service}/migrations" in text
    others = set(SERVICES) - {service}
    copied_src = set(re.findall(r"services/(\w+)/src", text))
    assert not copied_src & others, f"{service}'s image copies other services' code: {copied_src & others}"


# ---------------------------------------------------------------- deploy/

DEPLOY = ROOT / "deploy"


def _yaml_files() -> list[Path]:
    return sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")])


@pytest.mark.parametrize("path", _yaml_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_deploy_yaml_parses(path: Path) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text("utf-8")) if d is not None]
    assert docs, f"{path} is empty"
    is_patch_or_config = path.name in ("config.yaml",) or "patch" in path.name or path.name.endswith("-prod.yaml")
    for doc in docs:
        if not is_patch_or_config and isinstance(doc, dict):
            assert "apiVersion" in doc and "kind" in doc, f"{path}: a document without apiVersion/kind"


def _kustomizations() -> list[Path]:
    return sorted(DEPLOY.rglob("kustomization.yaml"))


@pytest.mark.parametrize("path", _kustomizations(), ids=lambda p: str(p.parent.relative_to(DEPLOY)))
def test_kustomization_references_exist(path: Path) -> None:
    k = yaml.safe_load(path.read_text("utf-8"))
    folder = path.parent
    refs: list[str] = [*k.get("resources", []), *k.get("components", [])]
    refs += [p["path"] for p in k.get("patches", []) if "path" in p]
    refs += k.get("patchesStrategicMerge", [])
    for gen in [*k.get("configMapGenerator", []), *k.get("secretGenerator", [])]:
        refs += [f.split("=", 1)[-1] for f in gen.get("files", [])]
        refs += gen.get("envs", [])
    missing = [r for r in refs if "://" not in r and not (folder / r).exists()]
    assert not missing, f"{path.relative_to(ROOT)} names files that do not exist: {missing}"
    for r in k.get("resources", []) + k.get("components", []):
        target = folder / r
        if target.is_dir():
            assert (target / "kustomization.yaml").exists(), f"{target} has no kustomization.yaml"


def test_base_has_a_deployment_and_service_per_service_with_probes_and_secrets() -> None:
    docs = [d for p in (DEPLOY / "base").glob("*.yaml") for d in yaml.safe_load_all(p.read_text("utf-8")) if d]
    by_kind: dict[tuple[str, str], dict] = {(d["kind"], d["metadata"]["name"]): d for d in docs if "metadata" in d}
    for service in SERVICES:
        deployment = by_kind.get(("Deployment", service))
        assert deployment, f"no Deployment {service} in deploy/base"
        assert ("Service", service) in by_kind, f"no Service {service} in deploy/base"
        pod = deployment["spec"]["template"]["spec"]
        assert pod.get("terminationGracePeriodSeconds")
        container = pod["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
        assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
        assert container["ports"][0]["containerPort"] == DEFAULT_PORTS[service]
        assert container["resources"]["requests"]
        env = {e["name"]: e for e in container.get("env", [])}
        for name in ("DATABASE_URL", "ZABOTA_API_TOKEN", "ZABOTA_SECRET_KEY", "ZABOTA_WEBHOOK_SECRET"):
            assert "secretKeyRef" in env[name]["valueFrom"], f"{service}: {name} must come from a Secret"
        assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"] == f"{service.upper()}_DATABASE_URL"
    ingresses = [d for d in docs if d.get("kind") == "Ingress"]
    assert len(ingresses) == 1
    backends = {p["backend"]["service"]["name"] for r in ingresses[0]["spec"]["rules"] for p in r["http"]["paths"]}
    assert backends == {"gateway"}, "the gateway is the one public entry"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
@pytest.mark.parametrize("overlay", ["base", "overlays/dev", "overlays/prod"])
def test_kustomize_renders(overlay: str) -> None:
    result = subprocess.run(["kubectl", "kustomize", str(DEPLOY / overlay)], check=False,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    kinds = [(d["kind"], d["metadata"]["name"]) for d in docs]
    for service in SERVICES:
        assert ("Deployment", service) in kinds
    if overlay == "overlays/prod":
        hpas = {name for kind, name in kinds if kind == "HorizontalPodAutoscaler"}
        assert hpas == set(SERVICES)
        for d in docs:
            # Jaeger all-in-one (components/tracing) keeps its traces in Badger, a single-writer local store.
            if d["kind"] == "Deployment" and d["metadata"]["name"] != "jaeger":
                assert d["spec"]["replicas"] >= 2, f"{d['metadata']['name']}: prod runs 2+ replicas"
