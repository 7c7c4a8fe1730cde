"""deploy/kubernetes: the kustomize base and its overlays, rendered with `kubectl kustomize` and checked twice.

Offline, on the parsed objects: hardened pods (non-root, read-only root, dropped capabilities, resources),
probes, the commands, the scheduler that can never run twice, the Role derived from the calls the kubernetes
runtime makes (exactly those, nothing more), settings that load, and the differences between the overlays.

Against a real kube-apiserver (1.20, tests/support/kube.py): every overlay passes `kubectl apply
--dry-run=server --validate=strict`; deliberately broken copies are refused (so the dry run does validate);
and the KubernetesRuntime, acting as the manifests' ServiceAccount through the RoleBinding, can do all it does
and nothing else.
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes.client as k8s
import pytest
import yaml

from aigc_admin.adapters.runtime import kubernetes as runtime_module
from aigc_admin.adapters.runtime.kubernetes import KubernetesRuntime
from aigc_admin.domain.runtime import WorkloadKind, WorkloadSpec, WorkloadState
from aigc_admin.settings import SPECS, ConfigError, load_settings
from tests.support.kube import KubeCluster, start_kube

KUBECTL = shutil.which("kubectl")
if KUBECTL is None:
    pytest.skip("kubectl (with kustomize) is not installed: the manifests cannot be rendered",
                allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
VARIANTS = {"base": ROOT / "base", "small": ROOT / "overlays" / "small",
            "production": ROOT / "overlays" / "production"}
APP = {"aigc-admin-api", "aigc-admin-worker", "aigc-admin-scheduler"}  # the platform's own Deployments
STORAGE_PATH = "/var/lib/aigc-admin"
SERVICE_ACCOUNT = "aigc-admin"
Obj = dict[str, Any]


# --- rendering ----------------------------------------------------------------------------------------
def kustomize(directory: Path) -> str:
    done = subprocess.run([KUBECTL or "kubectl", "kustomize", str(directory)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, f"kubectl kustomize {directory}: {done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    return {name: kustomize(path) for name, path in VARIANTS.items()}


@pytest.fixture(scope="module")
def objects(rendered: dict[str, str]) -> dict[str, list[Obj]]:
    return {name: [d for d in yaml.safe_load_all(text) if d] for name, text in rendered.items()}


def find(objs: list[Obj], kind: str, name: str | None = None) -> list[Obj]:
    return [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def one(objs: list[Obj], kind: str, name: str) -> Obj:
    found = find(objs, kind, name)
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def workloads(objs: list[Obj]) -> list[Obj]:
    return [o for o in objs if o["kind"] in ("Deployment", "StatefulSet")]


def pod(workload: Obj) -> Obj:
    return dict(workload["spec"]["template"]["spec"])


def container(workload: Obj) -> Obj:
    containers = pod(workload)["containers"]
    assert len(containers) == 1, workload["metadata"]["name"]
    return dict(containers[0])


def env_of(objs: list[Obj], workload: Obj, namespace: str = "aigc") -> dict[str, str]:
    """The environment the container gets: ConfigMaps and Secrets of envFrom, then env (downward API resolved)."""
    c = container(workload)
    env: dict[str, str] = {}
    for source in c.get("envFrom", []):
        if "configMapRef" in source:
            env.update(one(objs, "ConfigMap", source["configMapRef"]["name"])["data"])
        else:
            env.update(one(objs, "Secret", source["secretRef"]["name"])["stringData"])
    for var in c.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
        elif "fieldRef" in var.get("valueFrom", {}):
            assert var["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
            env[var["name"]] = namespace
        else:
            ref = var["valueFrom"]["secretKeyRef"]
            env[var["name"]] = one(objs, "Secret", ref["name"])["stringData"][ref["key"]]
    return env


VARIANT_NAMES = list(VARIANTS)


# --- offline checks -----------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", VARIANT_NAMES)
def test_every_pod_runs_unprivileged_with_resources(objects: dict[str, list[Obj]], variant: str) -> None:
    objs = objects[variant]
    assert {w["metadata"]["name"] for w in workloads(objs)} >= APP
    for w in workloads(objs):
        name, spec, c = w["metadata"]["name"], pod(w), container(w)
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert c["securityContext"]["allowPrivilegeEscalation"] is False, name
        assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}, name
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(c["resources"][kind]), f"{name}: {kind}"
        if name in APP:
            assert spec["securityContext"]["runAsUser"] == 10001, name
            assert c["securityContext"]["readOnlyRootFilesystem"] is True, name
            assert c["image"].split("/")[-1].startswith("aigc-admin:"), name
            mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
            volumes = {v["name"]: v for v in spec["volumes"]}
            assert "emptyDir" in volumes[mounts["/tmp"]], f"{name}: /tmp must be writable"
        else:  # MariaDB and Redis of overlays/small: their images' own users
            assert spec["securityContext"]["runAsUser"] == 999, name
            assert spec["automountServiceAccountToken"] is False, name


@pytest.mark.parametrize("variant", VARIANT_NAMES)
def test_what_serves_traffic_has_probes_and_the_api_probes_its_health_endpoints(
        objects: dict[str, list[Obj]], variant: str) -> None:
    objs = objects[variant]
    for w in workloads(objs):
        c = container(w)
        if c.get("ports"):  # behind a Service: readiness decides whether it gets traffic
            assert "readinessProbe" in c and "livenessProbe" in c, w["metadata"]["name"]
        else:  # the worker and the scheduler: nothing to be ready for (see worker.yaml)
            assert "readinessProbe" not in c, w["metadata"]["name"]
    api = container(one(objs, "Deployment", "aigc-admin-api"))
    assert api["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert api["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert api["startupProbe"]["httpGet"]["path"] == "/healthz"  # migrations run before the server listens
    assert api["ports"] == [{"name": "http", "containerPort": 8080}]


@pytest.mark.parametrize("variant", VARIANT_NAMES)
def test_commands_storage_and_service_accounts(objects: dict[str, list[Obj]], variant: str) -> None:
    objs = objects[variant]
    commands = {name: container(one(objs, "Deployment", name))["command"] for name in APP}
    assert commands == {"aigc-admin-api": ["aigc-admin", "start", "-p", "0.0.0.0:8080"],
                        "aigc-admin-worker": ["aigc-admin", "worker"],
                        "aigc-admin-scheduler": ["aigc-admin", "cronjob", "start"]}
    claim = one(objs, "PersistentVolumeClaim", "aigc-admin-storage")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]  # API and workers on several nodes
    assert one(objs, "ServiceAccount", SERVICE_ACCOUNT)
    for name in ("aigc-admin-api", "aigc-admin-worker"):
        w = one(objs, "Deployment", name)
        assert pod(w)["serviceAccountName"] == SERVICE_ACCOUNT
        assert pod(w).get("automountServiceAccountToken", True), f"{name} needs the token for the runtime"
        volumes = {v["name"]: v for v in pod(w)["volumes"]}
        storage = [m for m in container(w)["volumeMounts"] if m["mountPath"] == STORAGE_PATH]
        assert len(storage) == 1, name
        assert volumes[storage[0]["name"]]["persistentVolumeClaim"]["claimName"] == "aigc-admin-storage"
        env = env_of(objs, w)
        assert env["AIGC_ADMIN_SERVER_STORAGE_PATH"] == STORAGE_PATH
    scheduler = one(objs, "Deployment", "aigc-admin-scheduler")
    assert pod(scheduler)["automountServiceAccountToken"] is False  # it never calls the Kubernetes API
    assert not [m for m in container(scheduler)["volumeMounts"] if m["mountPath"] == STORAGE_PATH]


@pytest.mark.parametrize("variant", VARIANT_NAMES)
def test_the_scheduler_never_runs_twice(objects: dict[str, list[Obj]], variant: str) -> None:
    spec = one(objects[variant], "Deployment", "aigc-admin-scheduler")["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}  # the old pod is gone before the new one starts


@pytest.mark.parametrize("variant", VARIANT_NAMES)
def test_settings_load_from_the_config_map_and_secret(objects: dict[str, list[Obj]], variant: str) -> None:
    objs = objects[variant]
    known = {env for spec in SPECS.values() for env in spec.envs}
    secret_envs = {spec.envs[0] for spec in SPECS.values() if spec.secret}
    config = one(objs, "ConfigMap", "aigc-admin-config")["data"]
    secret = one(objs, "Secret", "aigc-admin-secrets")["stringData"]
    assert not set(config) - known, "unknown setting in the ConfigMap"
    assert not set(secret) - known, "unknown setting in the Secret"
    assert not set(config) & secret_envs, "a secret setting in the ConfigMap"
    # What production mode refuses to generate, and the passwords, are in the Secret (as placeholders).
    assert {"AIGC_MYSQL_PASSWORD", "AIGC_ADMIN_SERVER_KEY", "AIGC_ADMIN_SERVER_SECRET_KEY",
            "AIGC_ADMIN_SERVER_ADMIN_PASS"} <= set(secret)
    # The key placeholders are empty, so a forgotten one fails closed instead of being a key anyone can read.
    assert secret["AIGC_ADMIN_SERVER_KEY"] == secret["AIGC_ADMIN_SERVER_SECRET_KEY"] == ""
    for name in sorted(APP):
        env = env_of(objs, one(objs, "Deployment", name), namespace="team-a")
        s = load_settings(environ=env)
        assert (s.runtime_backend, s.db_drive, s.server_env) == ("kubernetes", "mysql", "production"), name
        assert s.runtime_k8s_namespace == "team-a" and s.namespace == "team-a", name
        assert not s.redis_embedded, name  # worker and scheduler refuse an embedded Redis
        assert s.runtime_k8s_volume_name == "aigc-admin-storage", name
        if name != "aigc-admin-scheduler":
            assert s.db_mysql_password, name
            for needed in (s.jwt_secret, s.encryption_key):  # production mode: never generated
                with pytest.raises(ConfigError, match=r"is required when server\.env is 'production'"):
                    needed()
    scheduler_env = env_of(objs, one(objs, "Deployment", "aigc-admin-scheduler"))
    assert not {"AIGC_ADMIN_SERVER_KEY", "AIGC_ADMIN_SERVER_SECRET_KEY", "AIGC_MYSQL_PASSWORD"} & set(scheduler_env)


@pytest.mark.parametrize("variant", VARIANT_NAMES)
def test_references_resolve(objects: dict[str, list[Obj]], variant: str) -> None:
    """Selectors select, names name something: what a dry run cannot tell (it checks each object alone)."""
    objs = objects[variant]
    templates = [w["spec"]["template"]["metadata"]["labels"] for w in workloads(objs)]

    def selects(selector: dict[str, str]) -> int:
        return sum(1 for labels in templates if selector.items() <= labels.items())

    for w in workloads(objs):
        assert w["spec"]["selector"]["matchLabels"].items() <= w["spec"]["template"]["metadata"]["labels"].items()
    for svc in find(objs, "Service"):
        assert selects(svc["spec"]["selector"]) == 1, svc["metadata"]["name"]
    for pdb in find(objs, "PodDisruptionBudget"):
        assert selects(pdb["spec"]["selector"]["matchLabels"]) == 1
    for ing in find(objs, "Ingress"):
        for rule in ing["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                svc = one(objs, "Service", backend["name"])
                assert backend["port"]["name"] in {p["name"] for p in svc["spec"]["ports"]}
    for w in workloads(objs):
        for volume in pod(w).get("volumes", []):
            if "persistentVolumeClaim" in volume:
                one(objs, "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
        env_of(objs, w)  # every ConfigMap, Secret and key it names exists
    binding = one(objs, "RoleBinding", "aigc-admin-runtime")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": "aigc-admin-runtime"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT}]


# --- the Role: exactly what the kubernetes runtime calls ------------------------------------------------
API_GROUPS = {"core": "", "apps": "apps", "batch": "batch"}
VERBS = {"create": "create", "read": "get", "list": "list", "delete": "delete", "patch": "patch",
         "replace": "update"}


def runtime_permissions() -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) of every client call in adapters/runtime/kubernetes.py."""
    source = Path(runtime_module.__file__).read_text()
    calls = set(re.findall(r"self\.(core|apps|batch)\.(\w+)", source))
    assert calls, "no client call found: has the runtime changed shape?"
    needed = set()
    for api, method in calls:
        m = re.fullmatch(r"(create|read|list|delete|patch|replace)_namespaced_([a-z_]+?)(_log|_status|_scale)?",
                         method)
        assert m, f"cannot map {api}.{method} to a permission: extend this test"
        verb, kind, sub = m.groups()
        resource = kind.replace("_", "") + "s" + (f"/{sub[1:]}" if sub else "")
        needed.add((API_GROUPS[api], resource, VERBS[verb]))
    # custom objects: the runtime's only kind is the LeaderWorkerSet (multi-node replicas)
    for verb in re.findall(r"self\.custom\.(create|get|list|delete)_namespaced_custom_object\(", source):
        needed.add(("leaderworkerset.x-k8s.io", "leaderworkersets", verb))
    return needed


def role_permissions(role: Obj) -> set[tuple[str, str, str]]:
    granted = set()
    for rule in role["rules"]:
        assert set(rule) == {"apiGroups", "resources", "verbs"}, "no resourceNames/nonResourceURLs expected"
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    assert "*" not in (group, resource, verb)
                    granted.add((group, resource, verb))
    return granted


EXPECTED_RULES = {
    ("apps", "deployments", "create"), ("apps", "deployments", "get"), ("apps", "deployments", "list"),
    ("apps", "deployments", "delete"),
    ("batch", "jobs", "create"), ("batch", "jobs", "get"), ("batch", "jobs", "list"), ("batch", "jobs", "delete"),
    ("", "services", "create"), ("", "services", "delete"),
    ("", "pods", "list"), ("", "pods/log", "get"),
    *(("leaderworkerset.x-k8s.io", "leaderworkersets", verb) for verb in ("create", "get", "list", "delete")),
}


def test_the_expected_rules_are_what_the_runtime_calls() -> None:
    assert runtime_permissions() == EXPECTED_RULES


@pytest.mark.parametrize("variant", VARIANT_NAMES)
def test_the_role_grants_exactly_what_the_runtime_calls(objects: dict[str, list[Obj]], variant: str) -> None:
    objs = objects[variant]
    assert find(objs, "ClusterRole") == [] and find(objs, "ClusterRoleBinding") == []
    assert role_permissions(one(objs, "Role", "aigc-admin-runtime")) == EXPECTED_RULES


# --- the overlays -------------------------------------------------------------------------------------
def replicas(objs: list[Obj], name: str) -> int:
    return int(one(objs, "Deployment", name)["spec"]["replicas"])


def requests(objs: list[Obj], name: str) -> str:
    return str(container(one(objs, "Deployment", name))["resources"]["requests"]["memory"])


def test_the_overlays_differ_as_intended(objects: dict[str, list[Obj]]) -> None:
    base, small, prod = objects["base"], objects["small"], objects["production"]
    assert (replicas(base, "aigc-admin-api"), replicas(small, "aigc-admin-api"),
            replicas(prod, "aigc-admin-api")) == (2, 1, 3)
    assert (requests(small, "aigc-admin-api"), requests(base, "aigc-admin-api"),
            requests(prod, "aigc-admin-api")) == ("256Mi", "512Mi", "1Gi")
    assert container(one(base, "Deployment", "aigc-admin-api"))["image"] == "aigc-admin:latest"

    # small: MariaDB and Redis in the cluster, with volumes, where the ConfigMap points.
    config = one(small, "ConfigMap", "aigc-admin-config")["data"]
    mariadb, redis = one(small, "StatefulSet", "aigc-admin-mariadb"), one(small, "StatefulSet", "aigc-admin-redis")
    assert container(mariadb)["image"] == "mariadb:11" and container(redis)["image"] == "redis:7"
    assert mariadb["spec"]["volumeClaimTemplates"][0]["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert config["AIGC_MYSQL_HOST"] == "aigc-admin-mariadb"
    assert config["AIGC_REDIS_HOSTS"] == "aigc-admin-redis:6379"
    db_env = {e["name"]: e for e in container(mariadb)["env"]}
    assert db_env["MARIADB_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "aigc-admin-secrets",
                                                                       "key": "AIGC_MYSQL_PASSWORD"}
    assert (db_env["MARIADB_USER"]["value"], db_env["MARIADB_DATABASE"]["value"]) == (
        config["AIGC_MYSQL_USER"], config["AIGC_MYSQL_DATABASE"])
    assert {p["metadata"]["name"] for p in find(small, "NetworkPolicy")} == {"aigc-admin-mariadb",
                                                                             "aigc-admin-redis"}
    assert find(small, "Ingress") == [] and find(small, "PodDisruptionBudget") == []

    # production: nothing of the database in the cluster; external hosts; Ingress with TLS; a PDB; pinned image.
    assert find(prod, "StatefulSet") == []
    assert not [o for o in prod if re.search("mariadb|redis", o["metadata"]["name"])]
    config = one(prod, "ConfigMap", "aigc-admin-config")["data"]
    assert config["AIGC_MYSQL_HOST"] not in ("aigc-admin-mariadb", "127.0.0.1")
    assert not config["AIGC_REDIS_HOSTS"].startswith(("aigc-admin-redis", "embedded"))
    assert config["AIGC_ADMIN_SERVER_ENV"] == "production"  # kept from the base by the merge patch
    ingress = one(prod, "Ingress", "aigc-admin-api")
    assert ingress["apiVersion"] == "networking.k8s.io/v1"
    host = ingress["spec"]["rules"][0]["host"]
    assert ingress["spec"]["tls"][0]["hosts"] == [host] and ingress["spec"]["tls"][0]["secretName"]
    assert config["AIGC_ADMIN_SERVER_DOMAIN"] == f"https://{host}"
    pdb = one(prod, "PodDisruptionBudget", "aigc-admin-api")
    assert pdb["apiVersion"] == "policy/v1beta1"  # what a 1.20 server serves; see pdb.yaml for policy/v1
    assert pdb["spec"]["maxUnavailable"] == 1
    assert all(not container(w)["image"].endswith(":latest") for w in workloads(prod))
    assert one(prod, "Deployment", "aigc-admin-api")["spec"]["template"]["spec"]["topologySpreadConstraints"]


# --- against a real kube-apiserver --------------------------------------------------------------------
NAMESPACE = "aigc-manifests"


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    cluster = start_kube(tmp_path_factory.mktemp("kube"))
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def kubeconfig(kube: KubeCluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "test", "cluster": {"server": kube.host, "certificate-authority": kube.ca_file}}],
        "users": [{"name": "admin", "user": {"token": kube.token}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "admin"}}],
    }
    path = tmp_path_factory.mktemp("kubeconfig") / "config"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    kubectl(path, "create", "namespace", NAMESPACE)
    # The service-account admission plugin wants the namespace's "default" account (a controller makes it).
    kubectl(path, "create", "serviceaccount", "default", "-n", NAMESPACE)
    return path


def kubectl(config: Path, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([KUBECTL or "kubectl", f"--kubeconfig={config}", *args], input=stdin, capture_output=True,
                          text=True, timeout=60)
    if check:
        assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
    return done


def dry_run(config: Path, manifest: str, validate: str = "strict") -> subprocess.CompletedProcess[str]:
    return kubectl(config, "apply", "--dry-run=server", f"--validate={validate}", "--namespace", NAMESPACE,
                   "-f", "-", stdin=manifest, check=False)


@pytest.mark.parametrize("variant", VARIANT_NAMES)
def test_the_api_server_accepts_every_object(rendered: dict[str, str], objects: dict[str, list[Obj]],
                                             kubeconfig: Path, variant: str) -> None:
    done = dry_run(kubeconfig, rendered[variant])
    assert done.returncode == 0, done.stderr
    accepted = [line for line in done.stdout.splitlines() if line.endswith("(server dry run)")]
    assert len(accepted) == len(objects[variant]), done.stdout


def broken(objs: list[Obj], change: Any) -> str:
    objs = copy.deepcopy(objs)
    change(one(objs, "Deployment", "aigc-admin-api"))
    return yaml.safe_dump_all(objs)


def test_the_dry_run_refuses_broken_manifests(objects: dict[str, list[Obj]], kubeconfig: Path) -> None:
    base = objects["base"]

    # A wrong type: the server cannot even decode it (client-side validation off, so the server answers).
    def two(d: Obj) -> None:
        d["spec"]["replicas"] = "two"
    done = dry_run(kubeconfig, broken(base, two), validate="false")
    assert done.returncode != 0
    assert "Error from server (BadRequest)" in done.stderr and "DeploymentSpec.Replicas" in done.stderr

    # A well-formed but invalid object: the server's validation refuses it.
    def mismatch(d: Obj) -> None:
        d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] = "other"
    done = dry_run(kubeconfig, broken(base, mismatch), validate="false")
    assert done.returncode != 0
    assert "selector` does not match template `labels`" in done.stderr

    # A misspelt field: a 1.20 server drops unknown fields silently (no server-side field validation before
    # 1.25), so only --validate=strict, against the server's OpenAPI schema, refuses it. Hence strict above.
    def typo(d: Obj) -> None:
        d["spec"]["template"]["spec"]["serviceAccountNme"] = d["spec"]["template"]["spec"].pop("serviceAccountName")
    assert dry_run(kubeconfig, broken(base, typo), validate="false").returncode == 0
    done = dry_run(kubeconfig, broken(base, typo))
    assert done.returncode != 0
    assert 'unknown field "serviceAccountNme"' in done.stderr


@pytest.fixture(scope="module")
def rbac_applied(objects: dict[str, list[Obj]], kubeconfig: Path) -> str:
    """The base's ServiceAccount, Role and RoleBinding created for real; the account's user name."""
    rbac = [o for o in objects["base"] if o["kind"] in ("ServiceAccount", "Role", "RoleBinding")]
    assert len(rbac) == 3
    kubectl(kubeconfig, "apply", "--namespace", NAMESPACE, "-f", "-", stdin=yaml.safe_dump_all(rbac))
    return f"system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}"


def api_client(kube: KubeCluster, as_user: str = "") -> k8s.ApiClient:
    config = k8s.Configuration()
    config.host = kube.host
    config.api_key = {"authorization": kube.token}
    config.api_key_prefix = {"authorization": "Bearer"}
    config.ssl_ca_cert = kube.ca_file
    client = k8s.ApiClient(config)
    if as_user:
        client.set_default_header("Impersonate-User", as_user)  # the admin acts as that user
    return client


@pytest.fixture
def runtime_as_service_account(kube: KubeCluster, rbac_applied: str) -> Iterator[KubernetesRuntime]:
    with api_client(kube, as_user=rbac_applied) as client:
        yield KubernetesRuntime(api_client=client, namespace=NAMESPACE, owner="aigc", shm_size="1Gi")


async def test_the_runtime_works_with_only_the_role(kube: KubeCluster, runtime_as_service_account: KubernetesRuntime
                                                   ) -> None:
    """Every runtime operation as the ServiceAccount: a missing permission would be a 403 (RuntimeUnavailable)."""
    rt = runtime_as_service_account
    service = WorkloadSpec(name="rbac-model", image="aigc/fastchat:test", command=["python3", "-m", "x"],
                           container_port=21002)
    job = WorkloadSpec(name="rbac-train", kind=WorkloadKind.JOB, image="aigc/fastchat:test",
                       command=["python3", "train.py"], container_port=21002)
    service_handle, job_handle = await rt.start(service), await rt.start(job)
    assert {h.name for h in await rt.list_owned()} == {"rbac-model", "rbac-train"}
    # A replica, made by the admin as the controller would: the runtime lists it and asks for its log.
    with api_client(kube) as admin:
        labels = k8s.AppsV1Api(admin).read_namespaced_deployment("rbac-model", NAMESPACE).spec.template.metadata.labels
        k8s.CoreV1Api(admin).create_namespaced_pod(NAMESPACE, {
            "metadata": {"name": "rbac-model-pod", "labels": labels},
            "spec": {"automountServiceAccountToken": False, "containers": [{"name": "main", "image": "x"}]}})
    status = await rt.status(service_handle)
    assert status.state == WorkloadState.PENDING and len(status.replicas) == 1
    assert (await rt.status(job_handle)).state == WorkloadState.PENDING
    assert (await rt.logs(service_handle)).lines == []  # no node: 400, read as "nothing yet" (not a 403)
    await rt.stop(service_handle)  # deletes the Deployment, the Service, and tries a Job of that name (404)
    await rt.stop(job_handle)
    assert await rt.list_owned() == []


CAN = [("create", "deployments.apps"), ("get", "deployments.apps"), ("list", "deployments.apps"),
       ("delete", "deployments.apps"), ("create", "jobs.batch"), ("delete", "jobs.batch"), ("create", "services"),
       ("delete", "services"), ("list", "pods"), ("get", "pods", "--subresource=log")]
# (the leaderworkersets rules are checked against the runtime's calls above; kubectl cannot name a resource whose
# CRD the test cluster does not have)
CANNOT = [("get", "secrets"), ("list", "secrets"), ("get", "configmaps"), ("patch", "deployments.apps"),
          ("update", "deployments.apps"), ("create", "pods"), ("delete", "pods"),
          ("create", "pods", "--subresource=exec"), ("get", "services"), ("create", "roles.rbac.authorization.k8s.io"),
          ("watch", "pods"), ("create", "deployments.apps", "-n", "default")]


def test_the_service_account_can_do_nothing_else(kubeconfig: Path, rbac_applied: str) -> None:
    def can(verb: str, resource: str, *more: str) -> bool:
        where = [] if "-n" in more else ["-n", NAMESPACE]
        done = kubectl(kubeconfig, "auth", "can-i", verb, resource, *more, *where, f"--as={rbac_applied}",
                       check=False)
        assert done.stdout.strip() in ("yes", "no"), done.stderr
        return done.stdout.strip() == "yes"

    assert [c for c in CAN if not can(*c)] == []
    assert [c for c in CANNOT if can(*c)] == []
