"""The images of docker/ built and run for real, and docker/compose.yaml brought up, on a private Docker Engine.

SLOW: a cold run builds everything (~4 min on 2 cores, ~3 of them building), a warm one takes ~40 s. The module
fixture starts a private dockerd (no bridge, no iptables: every container uses the host network or none) whose
data-root persists in ``${AIGC_CACHE_DIR:-~/.cache/aigc-admin}/images/docker`` (one run at a time, by a lock file),
so a warm run reuses every layer; it imports the debootstrap base (scripts/prepare-base-image.sh, cached as a
tarball) and builds the platform, engine (the CPU torch wheel staged into a temporary context) and training images
and the MariaDB/Redis stand-ins with docker/build.sh. Then:

- the sizes and build times are printed (docs/deployment numbers);
- the platform image runs as uid 10001, ``aigc-admin --help`` works, the build context holds only what it needs;
- the engine image imports the pinned fastchat/torch (CPU)/transformers/peft, and its controller and a
  model_worker of the tiny model (mounted read-only) register with each other as the non-root user;
- the training image runs our training program: ``--help`` and a LoRA run of the tiny model on CPU;
- docker-compose 1.29 brings up docker/compose.yaml (two API replicas, worker, scheduler, controller, MariaDB and
  Redis stand-ins, free ports through the variables, the secrets through an env file): every service healthy,
  /readyz 200 on both replicas, the administrator logs in and runs GraphQL through each replica, the API reaches
  the Docker Engine through the mounted socket; ``down -v`` leaves nothing behind;
- the monitoring profile renders (``config``), its Prometheus start-up script writes the files prometheus.yml
  names, and the Grafana dashboard covers the metric names agreed with /metrics.

IMAGE_TESTS=0 skips the Docker part; IMAGE_TESTS_FRESH=1 uses a throwaway data-root (a cold build);
IMAGE_TESTS_DOCKER_ROOT moves the persistent one. Needs root (debootstrap, dockerd), Debian's docker.io,
debootstrap and docker-compose (installed with apt-get when missing), Debian's mirror and PyPI (first builds),
the CPU torch wheel (TORCH_WHEEL, or /opt/wheels), and the tiny model for the LoRA and worker checks
(`bash scripts/prepare-engine.sh`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from docker.client import DockerClient
from docker.utils.build import exclude_paths

from aigc_admin.adapters.net import free_port
from tests.support.dockerd import Dockerd, _ping, _unmount_below

pytestmark = pytest.mark.images
ROOT = Path(__file__).resolve().parents[2]
DOCKER_DIR = ROOT / "docker"
COMPOSE_FILE = DOCKER_DIR / "compose.yaml"
PLATFORM = "aigc-admin/platform:0.1.0"
ENGINE = "aigc-admin/fastchat:0.2.36"
TRAINING = "aigc-admin/training:0.2.36"
BASE = "aigc-base:bookworm"
MARIADB = "aigc-test/mariadb:10.11"
REDIS = "aigc-test/redis:7"
BUILD_TIMEOUT_S = 1800  # liveness bound of a cold build of everything (~3 min on 2 cores)
LOCK_TIMEOUT_S = 1800  # another run (CI and a developer on one machine) holds the persistent data-root
UP_TIMEOUT_S = 240  # liveness bound: compose up + every service healthy (~30 s)
ADMIN_PASSWORD = "admin-" + uuid.uuid4().hex[:12]
# The contract with /metrics (src/aigc_admin/adapters/metrics.py): the dashboard shows each of these.
METRICS = ("aigc_gateway_requests_total", "aigc_gateway_overhead_seconds", "aigc_gateway_time_to_first_token_seconds",
           "aigc_gateway_tokens_total", "aigc_gateway_limit_refusals_total", "aigc_deployments", "aigc_rq_queue_jobs",
           "aigc_finetune_jobs", "aigc_evaluations", "aigc_ws_subscriptions")
LOGIN = ("mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) "
         "{ token errors { code } } }")


# --- prerequisites ------------------------------------------------------------------------------------------------

def _apt_install(*packages: str) -> str | None:
    """Install Debian packages when we may (root); the reason it failed otherwise."""
    if os.geteuid() != 0:
        return f"not root: cannot apt-get install {' '.join(packages)}"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for attempt in (["apt-get", "install", "-y", "-qq", *packages], ["apt-get", "update", "-qq"],
                    ["apt-get", "install", "-y", "-qq", *packages]):
        proc = subprocess.run(attempt, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL,
                              check=False, timeout=600)
        if proc.returncode == 0 and attempt[1] == "install":
            return None
    return f"apt-get install {' '.join(packages)} failed: {proc.stderr[-500:]}"


def _require_tools() -> None:
    if os.environ.get("IMAGE_TESTS") == "0":
        pytest.skip("IMAGE_TESTS=0")
    if os.geteuid() != 0:
        pytest.skip("the image tests need root (debootstrap chroots, dockerd)")
    if not (shutil.which("dockerd") or Path("/usr/sbin/dockerd").exists()):
        proc = subprocess.run(["bash", str(ROOT / "scripts/prepare-docker.sh")], capture_output=True, text=True,
                              check=False)
        if proc.returncode != 0:
            pytest.skip(f"no dockerd and it could not be installed: {proc.stderr[-500:]}")
    missing = [pkg for pkg, cmd in (("debootstrap", "debootstrap"), ("docker-compose", "docker-compose"),
                                    ("docker.io", "docker")) if not shutil.which(cmd)
               and not Path("/usr/sbin", cmd).exists()]
    if missing and (reason := _apt_install(*missing)):
        pytest.skip(reason)


def _compose_cli() -> str:
    cli = shutil.which("docker-compose")
    if cli is None and (reason := _apt_install("docker-compose")):
        pytest.skip(reason)
    return cli or "docker-compose"


# --- the private Docker Engine with a persistent data-root ----------------------------------------------------------

def _cache_dir() -> Path:
    return Path(os.environ.get("AIGC_CACHE_DIR") or Path.home() / ".cache" / "aigc-admin").expanduser()


@contextlib.contextmanager
def _exclusive(lock_path: Path, timeout: float) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as f:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail(f"{lock_path} is held by another image test run for over {timeout:.0f} s")
                time.sleep(2)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _start_dockerd(data_root: Path, workdir: Path, timeout: float = 30.0) -> Dockerd:
    """tests.support.dockerd.start_dockerd with a given data-root (kept: the layer cache); exec-root and socket in a
    short /tmp directory (unix socket paths must stay < 108 characters)."""
    binary = shutil.which("dockerd") or "/usr/sbin/dockerd"
    root = Path(tempfile.mkdtemp(prefix="dkr", dir="/tmp"))
    sock = root / "docker.sock"
    log_path = workdir / "dockerd.log"
    argv = [binary, "--data-root", str(data_root), "--exec-root", str(root / "exec"), "--host", f"unix://{sock}",
            "--pidfile", str(root / "dockerd.pid"), "--iptables=false", "--ip6tables=false", "--bridge=none",
            "--storage-driver=overlay2"]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    daemon = Dockerd(base_url=f"unix://{sock}", root=root, process=process, log_path=log_path)
    deadline = time.monotonic() + timeout
    while not _ping(sock):
        if process.poll() is not None or time.monotonic() > deadline:
            tail = daemon.log_tail()
            daemon.stop()
            raise RuntimeError(f"dockerd did not come up (exit status {process.poll()}):\n{tail}")
        time.sleep(0.1)
    return daemon


@dataclass
class Images:
    daemon: Dockerd
    client: DockerClient
    built: dict[str, tuple[int, str]]  # name -> (seconds, size) of what build.sh built or imported
    build_seconds: float
    warm: bool  # the data-root existed before this run
    sizes: dict[str, int] = field(default_factory=dict)

    @property
    def sock(self) -> str:
        return self.daemon.base_url.removeprefix("unix://")

    def env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": self.daemon.base_url, **extra}


def _report(request: pytest.FixtureRequest, *lines: str) -> None:
    """Shown in the normal test output (without -s): these numbers go into the docs."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        for line in lines:
            if reporter is not None:
                reporter.write_line(f"[images] {line}")
            else:
                print(f"[images] {line}")


def _clean(client: DockerClient) -> None:
    """Leftovers of an interrupted run in the persistent data-root: the daemon is ours alone."""
    for c in client.containers.list(all=True):
        c.remove(force=True, v=True)
    client.volumes.prune()


@pytest.fixture(scope="module")
def images(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Images]:
    _require_tools()
    fresh = os.environ.get("IMAGE_TESTS_FRESH") == "1"
    cache = _cache_dir() / "images"
    data_root = (Path(tmp_path_factory.mktemp("docker-data")) if fresh
                 else Path(os.environ.get("IMAGE_TESTS_DOCKER_ROOT") or cache / "docker"))
    with _exclusive(cache / "lock", LOCK_TIMEOUT_S):
        warm = (data_root / "image").is_dir()
        daemon = _start_dockerd(data_root, tmp_path_factory.mktemp("dockerd"))
        client = DockerClient(base_url=daemon.base_url, timeout=300)
        try:
            _clean(client)
            started = time.monotonic()
            proc = subprocess.run(["bash", str(DOCKER_DIR / "build.sh"), "base", "platform", "engine", "training",
                                   "test-services"], capture_output=True, text=True, check=False,
                                  timeout=BUILD_TIMEOUT_S, env={**os.environ, "DOCKER_HOST": daemon.base_url})
            build_seconds = time.monotonic() - started
            if proc.returncode != 0:
                pytest.fail(f"docker/build.sh failed ({proc.returncode}):\n{proc.stderr[-6000:]}")
            built = {m[1]: (int(m[2]), m[3]) for m in re.finditer(r"^built (\S+) in (\d+) s \((.+)\)$",
                                                                  proc.stdout, re.M)}
            # Earlier versions of rebuilt images (the build stages are tagged: their cache stays).
            client.images.prune(filters={"dangling": True})
            result = Images(daemon, client, built, build_seconds, warm)
            for name in (BASE, PLATFORM, ENGINE, TRAINING, MARIADB, REDIS):
                result.sizes[name] = int(client.images.get(name).attrs["Size"])
            _report(request, f"build of everything: {build_seconds:.0f} s ({'kept' if warm else 'new'} data-root "
                             f"{data_root})",
                    *(f"{name}: {size / 1e6:.0f} MB" + (f", built in {built[name][0]} s" if name in built else "")
                      for name, size in result.sizes.items()))
            yield result
        finally:
            with contextlib.suppress(Exception):
                _clean(client)
            client.close()
            daemon.stop()
            _unmount_below(data_root)
            if fresh:
                shutil.rmtree(data_root, ignore_errors=True)


def _run(images: Images, image: str, *args: str, timeout: float = 120, **kw: Any) -> tuple[int, str, str]:
    """docker run --rm, network none unless given; (exit code, stdout, stderr)."""
    kw.setdefault("network_mode", "none")
    container = images.client.containers.run(image, list(args) if args else None, detach=True, **kw)
    try:
        code = container.wait(timeout=timeout)["StatusCode"]
        return (code, container.logs(stdout=True, stderr=False).decode(errors="replace"),
                container.logs(stdout=False, stderr=True).decode(errors="replace"))
    finally:
        container.remove(force=True)


# --- (a) the platform image ---------------------------------------------------------------------------------------

def test_platform_image_runs_as_non_root_with_the_cli(images: Images) -> None:
    config = images.client.images.get(PLATFORM).attrs["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["tini", "--", "aigc-admin"]
    assert config["Cmd"] == ["start", "-p", "0.0.0.0:8080"]
    assert config["Healthcheck"]["Test"] == ["CMD", "python3", "/opt/aigc/healthcheck.py"]

    code, out, err = _run(images, PLATFORM, "--help")
    assert code == 0, err
    for command in ("start", "worker", "cronjob", "migrate"):
        assert command in out
    code, out, err = _run(images, PLATFORM, "-c", "id -u; id -g; test ! -e /src && test ! -e /opt/aigc/bin/pip "
                          "&& test -w /var/lib/aigc-admin/storage && echo clean", entrypoint=["sh"])
    assert (code, out.split()) == (0, ["10001", "10001", "clean"]), err
    # The one-off commands pass the health check (it knows API, worker and scheduler apart).
    assert _run(images, PLATFORM, "/opt/aigc/healthcheck.py", entrypoint=["python3"])[0] == 0


def test_the_platform_build_context_is_small() -> None:
    patterns = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines()
                if p.strip() and not p.startswith("#")]
    sent = exclude_paths(str(ROOT), patterns, dockerfile="docker/Dockerfile")
    tops = {p.split("/", 1)[0] for p in sent}
    assert tops <= {"pyproject.toml", "README.md", "src", "docker", ".dockerignore"}, tops
    assert not [p for p in sent if "__pycache__" in p or p.endswith((".pyc", ".pyo"))]
    assert sum((ROOT / p).stat().st_size for p in sent if (ROOT / p).is_file()) < 20 * 1024**2


# --- (b) the engine image -----------------------------------------------------------------------------------------

def _prepare_engine_pins() -> list[str]:
    script = (ROOT / "scripts/prepare-engine.sh").read_text()
    block = re.search(r"^REQUIREMENTS=\(\n(.*?)^\)", script, re.M | re.S)
    assert block, "REQUIREMENTS=( … ) not found in scripts/prepare-engine.sh"
    return re.findall(r'"([^"]+)"', block[1])


def test_engine_requirements_match_prepare_engine() -> None:
    lines = (DOCKER_DIR / "engine-requirements.txt").read_text().splitlines()
    pins = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert pins == _prepare_engine_pins()


def test_engine_image_imports_the_pinned_cpu_stack(images: Images) -> None:
    pins = dict(p.split("==") for p in _prepare_engine_pins() if "==" in p)
    code, out, err = _run(images, ENGINE, "python3", "-c", (
        "import json, os, fastchat, torch, transformers, peft, pydantic;"
        "print(json.dumps({'uid': os.getuid(), 'fschat': fastchat.__version__, 'torch': torch.__version__,"
        "'cuda': torch.cuda.is_available(), 'transformers': transformers.__version__, 'peft': peft.__version__,"
        "'pydantic': pydantic.VERSION}))"))
    assert code == 0, err
    got = json.loads(out)
    assert got["uid"] == 10001
    assert got["torch"] == pins["torch"] + "+cpu" and got["cuda"] is False
    assert (got["fschat"], got["transformers"], got["peft"], got["pydantic"]) == (
        pins["fschat"], pins["transformers"], pins["peft"], pins["pydantic"])


def _tiny_model() -> Path:
    path = Path(os.environ.get("AIGC_TINY_MODEL") or _cache_dir() / "models" / "tiny-llama")
    if not (path / "config.json").exists():
        pytest.skip(f"tiny model not found at {path}: bash scripts/prepare-engine.sh")
    return path


def test_engine_image_serves_the_tiny_model_as_non_root(images: Images) -> None:
    model = _tiny_model()
    controller_port, worker_port = free_port(), free_port()
    controller_url = f"http://127.0.0.1:{controller_port}"
    run = images.client.containers.run
    controller = run(ENGINE, ["python3", "-m", "fastchat.serve.controller", "--host", "127.0.0.1",
                              "--port", str(controller_port)], detach=True, network_mode="host")
    worker = run(ENGINE, ["python3", "-m", "fastchat.serve.model_worker", "--model-path", "/models/tiny",
                          "--model-names", "tiny", "--device", "cpu", "--conv-template", "vicuna_v1.1",
                          "--controller-address", controller_url, "--host", "127.0.0.1", "--port", str(worker_port),
                          "--worker-address", f"http://127.0.0.1:{worker_port}"],
                 detach=True, network_mode="host", volumes={str(model): {"bind": "/models/tiny", "mode": "ro"}})
    try:
        deadline = time.monotonic() + 120  # liveness bound: registered in ~7 s
        models: list[str] = []
        while "tiny" not in models:
            assert time.monotonic() < deadline, worker.logs()[-3000:].decode(errors="replace")
            worker.reload()
            assert worker.status != "exited", worker.logs()[-3000:].decode(errors="replace")
            with contextlib.suppress(httpx.HTTPError):
                models = httpx.post(f"{controller_url}/list_models", timeout=2).json()["models"]
            time.sleep(0.5)
        resp = httpx.post(f"http://127.0.0.1:{worker_port}/worker_generate",
                          json={"prompt": "Hello", "max_new_tokens": 5, "temperature": 0.0}, timeout=30)
        assert resp.status_code == 200 and resp.json()["error_code"] == 0, resp.text
    finally:
        for c in (worker, controller):
            c.remove(force=True)


# --- (c) the training image ---------------------------------------------------------------------------------------

def test_training_image_runs_the_training_program(images: Images, tmp_path: Path,
                                                  request: pytest.FixtureRequest) -> None:
    assert images.client.images.get(TRAINING).attrs["Config"]["Entrypoint"] == ["tini", "--"]
    code, out, err = _run(images, TRAINING)  # CMD --help (stdout is kept for the JSON lines: help is on stderr)
    assert code == 0 and "--base-model-path" in out + err and "--lora" in out + err, err

    model = _tiny_model()
    data, out_dir = tmp_path / "data", tmp_path / "out"
    data.mkdir()
    out_dir.mkdir()
    os.chown(out_dir, 10001, 10001)  # the image's user writes the weights
    rows = [{"messages": [{"role": "user", "content": f"What is {i} plus {i}?"},
                          {"role": "assistant", "content": f"{i} plus {i} is {2 * i}."}]} for i in range(20)]
    (data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    started = time.monotonic()
    code, out, err = _run(images, TRAINING, "python3", "/opt/aigc/finetune.py",  # the command the runtime passes
                          "--base-model-path", "/models/tiny", "--data-path", "/data/train.jsonl",
                          "--output-dir", "/out/lora", "--epochs", "1", "--train-batch-size", "4",
                          "--model-max-length", "128", "--logging-steps", "1", "--save-steps", "0", "--lora",
                          "--merge", timeout=300,
                          volumes={str(model): {"bind": "/models/tiny", "mode": "ro"},
                                   str(data): {"bind": "/data", "mode": "ro"},
                                   str(out_dir): {"bind": "/out", "mode": "rw"}})
    records = [json.loads(line) for line in out.splitlines()]
    assert code == 0, err[-3000:]
    kinds = [r["type"] for r in records]
    assert kinds[0] in ("data", "start") and kinds[-1] == "done" and kinds.count("step") == 5, kinds
    assert records[-1]["saved"] == "merged"
    assert (out_dir / "lora" / "config.json").exists()
    assert {p.stat().st_uid for p in (out_dir / "lora").iterdir()} == {10001}
    _report(request, f"LoRA run of the tiny model in the training image: {time.monotonic() - started:.1f} s")


# --- (d) compose --------------------------------------------------------------------------------------------------

def _compose_base() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE_FILE.read_text()))


def test_every_compose_service_uses_the_host_network_or_none() -> None:
    # Without network_mode, compose creates a bridge network "<project>_default": never on these machines.
    services = _compose_base()["services"]
    assert {name: s.get("network_mode") for name, s in services.items()
            if s.get("network_mode") not in ("host", "none")} == {}


@dataclass
class Stack:
    images: Images
    project: str
    env: dict[str, str]
    files: list[str]
    ports: dict[str, int]
    secrets: dict[str, str]  # the env file's lines
    env_file: Path
    data_dir: Path

    def compose(self, *args: str, timeout: float = UP_TIMEOUT_S,
                check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([_compose_cli(), "-p", self.project, "--env-file", str(self.env_file),
                               *(a for f in self.files for a in ("-f", f)), *args],
                              capture_output=True, text=True, env=self.env, check=False, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"docker-compose {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n"
                                 f"{proc.stderr[-3000:]}\n{self.logs()}")
        return proc

    def containers(self) -> list[Any]:
        return list(self.images.client.containers.list(
            all=True, filters={"label": f"com.docker.compose.project={self.project}"}))

    def logs(self) -> str:
        out = []
        for c in self.containers():
            out.append(f"--- {c.name} ({c.status}):\n{c.logs(tail=25).decode(errors='replace')}")
        return "\n".join(out)


def _stack(images: Images, tmp_path: Path) -> Stack:
    ports = {name: free_port() for name in ("AIGC_API_1_PORT", "AIGC_API_2_PORT", "MARIADB_PORT", "REDIS_PORT",
                                            "FASTCHAT_CONTROLLER_PORT", "PROMETHEUS_PORT", "GRAFANA_PORT")}
    data_dir = tmp_path / "aigc-data"
    data_dir.mkdir()
    secrets = {  # what an operator writes into docker/.env (docker/env.example)
        "AIGC_ADMIN_SERVER_KEY": uuid.uuid4().hex * 2,
        "AIGC_ADMIN_SERVER_SECRET_KEY": "x" * 43 + "=",  # 32 bytes, url-safe base64 (a Fernet key)
        "AIGC_ADMIN_SERVER_ADMIN_PASS": ADMIN_PASSWORD,
        "AIGC_MYSQL_PASSWORD": "db-" + uuid.uuid4().hex[:12],
        "MARIADB_ROOT_PASSWORD": "root-" + uuid.uuid4().hex[:12],
        "AIGC_REDIS_AUTH": "redis-" + uuid.uuid4().hex[:12],
        "AIGC_METRICS_TOKEN": "metrics-" + uuid.uuid4().hex[:12],
        "GRAFANA_ADMIN_PASSWORD": "grafana-" + uuid.uuid4().hex[:12],
        "DOCKER_GID": str(os.stat(images.sock).st_gid),
        "DOCKER_SOCKET": images.sock,
        "AIGC_DATA_DIR": str(data_dir),
        "MARIADB_IMAGE": MARIADB,
        "REDIS_IMAGE": REDIS,
        **{k: str(v) for k, v in ports.items()},
    }
    env_file = tmp_path / "aigc.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in secrets.items()))
    # Health checks every 2 s (the compose file's 10-15 s would make `depends_on: service_healthy` slow here).
    fast = {"interval": "2s", "timeout": "10s", "retries": 60}
    override = {"services": {name: {"network_mode": "host", "healthcheck": fast}
                             for name in ("api-1", "api-2", "worker", "scheduler", "controller", "mariadb", "redis")}}
    override_file = tmp_path / "compose.test.yaml"
    override_file.write_text(yaml.safe_dump(override))
    # Only the env file: neither the developer's AIGC_* settings nor a docker/.env may leak into the stack.
    env = {k: v for k, v in images.env().items() if not k.startswith(("AIGC_", "MARIADB_", "REDIS_", "COMPOSE_"))}
    return Stack(images, f"aigct{uuid.uuid4().hex[:8]}", env, [str(COMPOSE_FILE), str(override_file)],
                 ports, secrets, env_file, data_dir)


def _gql(base: str, query: str, variables: dict[str, Any] | None = None, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    resp = httpx.post(f"{base}/graphql", json={"query": query, "variables": variables or {}}, headers=headers,
                      timeout=30)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert not body.get("errors"), body
    return body["data"]


def test_compose_stack_comes_up_serves_through_both_replicas_and_goes_away(
        images: Images, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    stack = _stack(images, tmp_path)
    started = time.monotonic()
    try:
        stack.compose("up", "-d")
        expected = {"init", "api-1", "api-2", "worker", "scheduler", "controller", "mariadb", "redis"}
        deadline = time.monotonic() + UP_TIMEOUT_S
        while True:
            states = {c.labels["com.docker.compose.service"]: (c.status, c.attrs["State"].get("Health", {})
                                                                .get("Status")) for c in stack.containers()}
            healthy = {name for name, (status, health) in states.items()
                       if health == "healthy" or (name == "init" and status == "exited")}
            if healthy == expected:
                break
            assert time.monotonic() < deadline, f"not healthy in time: {states}\n{stack.logs()}"
            time.sleep(1)
        up_seconds = time.monotonic() - started
        init = next(c for c in stack.containers() if c.labels["com.docker.compose.service"] == "init")
        assert init.attrs["State"]["ExitCode"] == 0
        storage = stack.data_dir / "storage"
        assert (storage.stat().st_uid, storage.stat().st_gid) == (10001, 10001)

        replicas = [f"http://127.0.0.1:{stack.ports['AIGC_API_1_PORT']}",
                    f"http://127.0.0.1:{stack.ports['AIGC_API_2_PORT']}"]
        for base in replicas:
            ready = httpx.get(f"{base}/readyz", timeout=5)
            assert ready.status_code == 200 and ready.json() == {"status": "ready", "database": "mysql",
                                                                 "redis": "external"}, ready.text
        tokens = []
        for base in replicas:  # the same administrator (created once, by api-1) through each replica
            login = _gql(base, LOGIN, {"u": "admin", "p": ADMIN_PASSWORD})["login"]
            assert login["errors"] == [] and login["token"], login
            tokens.append(login["token"])
            assert _gql(base, "{ me { account { username } } }", token=login["token"]) == {
                "me": {"account": {"username": "admin"}}}
        code = f"t{uuid.uuid4().hex[:8]}"
        created = _gql(replicas[0], "mutation($i: CreateTenantInput!) { createTenant(input: $i) "
                                    "{ tenant { code } errors { message } } }",
                       {"i": {"name": "Compose", "code": code}}, token=tokens[0])["createTenant"]
        assert created == {"tenant": {"code": code}, "errors": []}
        listed = _gql(replicas[1], "query($s: String) { tenants(search: $s) { items { code } } }", {"s": code},
                      token=tokens[1])["tenants"]["items"]
        assert listed == [{"code": code}]  # one database behind both replicas

        # The Docker runtime's Engine, through the mounted socket, as uid 10001 (group_add: the socket's group).
        api = next(c for c in stack.containers() if c.labels["com.docker.compose.service"] == "api-1")
        probe = api.exec_run(["python3", "-c", "import docker; print(docker.DockerClient("
                                               "base_url='unix:///var/run/docker.sock').ping())"])
        assert (probe.exit_code, probe.output.strip()) == (0, b"True"), probe.output
        _report(request, f"compose up -d until every service is healthy: {up_seconds:.0f} s")
    finally:
        down_started = time.monotonic()
        stack.compose("down", "-v", "--timeout", "20", check=False)
        down_seconds = time.monotonic() - down_started
    assert stack.containers() == []
    assert images.client.volumes.list(filters={"label": f"com.docker.compose.project={stack.project}"}) == []
    assert sorted(n.name for n in images.client.networks.list()) == ["host", "none"]
    _report(request, f"compose down -v: {down_seconds:.0f} s")


def _start_script(images: Images, service: dict[str, Any], program: str, tmp_path: Path,
                  volumes: dict[str, dict[str, str]] | None = None, **env: str) -> tuple[int, str, str]:
    """A rendered service's ``sh -c`` entrypoint run in the base image, ``program`` (what it execs) replaced by a
    stand-in that prints its arguments: the official images cannot be pulled here."""
    fake = tmp_path / f"fake-{Path(program).name}"
    fake.write_text('#!/bin/sh\necho "started: $*"\n')
    fake.chmod(0o755)
    entrypoint = [part.replace("$$", "$") for part in service["entrypoint"]]  # `config` escapes $ again
    return _run(images, BASE, *entrypoint[1:], *service.get("command", []), entrypoint=[entrypoint[0]],
                environment={**service["environment"], **env},
                volumes={**(volumes or {}), str(fake): {"bind": program, "mode": "ro"}})


def test_monitoring_profile_renders_and_its_files_agree(images: Images, tmp_path: Path) -> None:
    stack = _stack(images, tmp_path)
    rendered = yaml.safe_load(stack.compose("--profile", "monitoring", "config").stdout)
    services = rendered["services"]
    assert {"prometheus", "grafana"} <= set(services)
    assert services["prometheus"]["profiles"] == ["monitoring"] == services["grafana"]["profiles"]
    assert services["mariadb"]["image"] == MARIADB and services["redis"]["image"] == REDIS

    # Prometheus: its start-up script (run here in the base image, with a stand-in for the binary) writes the
    # targets and the token where prometheus.yml looks for them, and refuses to start without a token.
    prom = services["prometheus"]
    config = yaml.safe_load((DOCKER_DIR / "prometheus/prometheus.yml").read_text())
    [job] = [j for j in config["scrape_configs"] if j["job_name"] == "aigc-admin"]
    assert job["metrics_path"] == "/metrics" and job["authorization"]["type"] == "Bearer"
    workdir = tmp_path / "prometheus"
    workdir.mkdir()
    code, out, err = _start_script(images, prom, "/bin/prometheus", tmp_path,
                                   volumes={str(workdir): {"bind": "/prometheus", "mode": "rw"}})
    assert (code, out.strip()) == (0, "started: " + " ".join(prom["command"])), err
    targets_file = Path(job["file_sd_configs"][0]["files"][0])
    token_file = Path(job["authorization"]["credentials_file"])
    assert targets_file.parent == token_file.parent == Path("/prometheus")
    assert json.loads((workdir / targets_file.name).read_text()) == [{"targets": [
        f"127.0.0.1:{stack.ports['AIGC_API_1_PORT']}", f"127.0.0.1:{stack.ports['AIGC_API_2_PORT']}"]}]
    token = (workdir / token_file.name).read_text()
    assert token == stack.secrets["AIGC_METRICS_TOKEN"] == services["api-1"]["environment"]["AIGC_METRICS_TOKEN"]
    code, out, err = _start_script(images, prom, "/bin/prometheus", tmp_path, AIGC_METRICS_TOKEN="")
    assert code == 1 and out == "" and "set AIGC_METRICS_TOKEN" in err

    # Grafana: never started with its default admin password.
    grafana = services["grafana"]
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == stack.secrets["GRAFANA_ADMIN_PASSWORD"]
    assert _start_script(images, grafana, "/run.sh", tmp_path)[:2] == (0, "started: \n")
    code, out, err = _start_script(images, grafana, "/run.sh", tmp_path, GF_SECURITY_ADMIN_PASSWORD="")
    assert code == 1 and out == "" and "set GRAFANA_ADMIN_PASSWORD" in err

    # Grafana: the provisioned data source is the dashboard's, the dashboards directory is the mounted one.
    datasource = yaml.safe_load((DOCKER_DIR / "grafana/provisioning/datasources/prometheus.yml").read_text())
    [ds] = datasource["datasources"]
    assert ds["url"] == "${PROMETHEUS_URL}"
    assert grafana["environment"]["PROMETHEUS_URL"] == f"http://127.0.0.1:{stack.ports['PROMETHEUS_PORT']}"
    provider = yaml.safe_load((DOCKER_DIR / "grafana/provisioning/dashboards/aigc-admin.yml").read_text())
    mounts = {v.split(":")[1] for v in grafana["volumes"] if isinstance(v, str)} | {
        v["target"] for v in grafana["volumes"] if isinstance(v, dict)}
    assert provider["providers"][0]["options"]["path"] in mounts
    dashboard = json.loads((DOCKER_DIR / "grafana/dashboards/aigc-admin.json").read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    assert [m for m in METRICS if m not in exprs] == []
    assert {p["datasource"]["uid"] for p in dashboard["panels"]} == {ds["uid"]}
