"""A throwaway real Kubernetes API server (etcd + kube-apiserver) for integration tests, envtest-style.

Nothing else runs: no scheduler, controller-manager or kubelet, so objects are stored and validated
but no pod ever starts; tests drive object status themselves. The kube-apiserver binary is built
from Debian's kubernetes source package by ``scripts/prepare-kube.sh``; etcd comes from Debian's
``etcd-server``. Both processes are children of the test run, stopped by pid.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from aigc_admin.adapters.net import free_port

ADMIN_USER = "aigc-test-admin"


def apiserver_binary() -> Path:
    """The kube-apiserver to run: $AIGC_KUBE_APISERVER, else the one scripts/prepare-kube.sh builds."""
    env = os.environ.get("AIGC_KUBE_APISERVER")
    if env:
        path = Path(env)
    else:
        cache = Path(os.environ.get("AIGC_CACHE_DIR") or Path.home() / ".cache" / "aigc-admin")
        path = cache / "kube" / "bin" / "kube-apiserver"
    if not os.access(path, os.X_OK):
        raise FileNotFoundError(f"no kube-apiserver at {path}: run scripts/prepare-kube.sh "
                                "(or point AIGC_KUBE_APISERVER at one)")
    return path


def etcd_binary() -> Path:
    found = shutil.which("etcd") or "/usr/bin/etcd"
    if not os.access(found, os.X_OK):
        raise FileNotFoundError("no etcd: run scripts/prepare-kube.sh (installs Debian's etcd-server)")
    return Path(found)


@dataclass
class KubeCluster:
    host: str  # https://127.0.0.1:PORT
    token: str  # bearer token of a member of system:masters
    ca_file: str  # the CA that signed the serving certificate (127.0.0.1 is in its SANs)
    workdir: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    insecure: bool = False

    def stop(self) -> None:
        for proc in reversed(self.processes):  # apiserver first, then etcd
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
        self.processes.clear()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _make_keys(d: Path) -> None:
    """A CA, a serving certificate for 127.0.0.1/localhost signed by it, and the service-account key pair."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=aigc-test-ca",
             "-keyout", str(d / "ca.key"), "-out", str(d / "ca.crt"))
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=kube-apiserver",
             "-keyout", str(d / "serving.key"), "-out", str(d / "serving.csr"))
    (d / "serving.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                   "extendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n")
    _openssl("x509", "-req", "-days", "2", "-in", str(d / "serving.csr"), "-CA", str(d / "ca.crt"),
             "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-extfile", str(d / "serving.ext"),
             "-out", str(d / "serving.crt"))
    _openssl("genrsa", "-out", str(d / "sa.key"), "2048")
    _openssl("rsa", "-in", str(d / "sa.key"), "-pubout", "-out", str(d / "sa.pub"))


def _wait_ready(cluster: KubeCluster, timeout: float, log: Path) -> None:
    context = ssl.create_default_context(cafile=cluster.ca_file)
    request = urllib.request.Request(f"{cluster.host}/readyz", headers={"Authorization": f"Bearer {cluster.token}"})
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        for proc in cluster.processes:
            if proc.poll() is not None:
                raise RuntimeError(f"pid {proc.pid} ({proc.args!r:.60}) exited with {proc.returncode}: "
                                   + log.read_text(errors="replace")[-2000:])
        try:
            with urllib.request.urlopen(request, timeout=2, context=context) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.2)
    raise TimeoutError(f"kube-apiserver not ready in {timeout:.0f} s ({last}); log tail: "
                       + log.read_text(errors="replace")[-2000:])


def start_kube(workdir: Path, ready_timeout: float = 30.0) -> KubeCluster:
    """Start etcd and kube-apiserver on free 127.0.0.1 ports under ``workdir``; wait for /readyz."""
    apiserver = apiserver_binary()
    etcd = etcd_binary()
    workdir.mkdir(parents=True, exist_ok=True)
    pki = workdir / "pki"
    pki.mkdir()
    _make_keys(pki)
    token = secrets.token_hex(16)
    (pki / "tokens.csv").write_text(f'{token},{ADMIN_USER},{ADMIN_USER},"system:masters"\n')

    client_port, peer_port, secure_port = free_port(), free_port(), free_port()
    cluster = KubeCluster(host=f"https://127.0.0.1:{secure_port}", token=token, ca_file=str(pki / "ca.crt"),
                          workdir=workdir)
    etcd_log = workdir / "etcd.log"
    apiserver_log = workdir / "kube-apiserver.log"
    try:
        with open(etcd_log, "wb") as out:
            cluster.processes.append(subprocess.Popen(
                [str(etcd), "--name", "aigc-test", "--data-dir", str(workdir / "etcd"),
                 "--listen-client-urls", f"http://127.0.0.1:{client_port}",
                 "--advertise-client-urls", f"http://127.0.0.1:{client_port}",
                 "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
                 "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
                 "--initial-cluster", f"aigc-test=http://127.0.0.1:{peer_port}",
                 "--unsafe-no-fsync", "--log-level", "warn"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
        with open(apiserver_log, "wb") as out:
            cluster.processes.append(subprocess.Popen(
                [str(apiserver), f"--etcd-servers=http://127.0.0.1:{client_port}",
                 "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={secure_port}",
                 f"--cert-dir={workdir / 'certs'}", f"--tls-cert-file={pki / 'serving.crt'}",
                 f"--tls-private-key-file={pki / 'serving.key'}", f"--token-auth-file={pki / 'tokens.csv'}",
                 "--authorization-mode=RBAC", "--service-cluster-ip-range=10.0.0.0/24",
                 "--service-account-issuer=https://kubernetes.default.svc",
                 f"--service-account-key-file={pki / 'sa.pub'}",
                 f"--service-account-signing-key-file={pki / 'sa.key'}",
                 "--insecure-port=0", "--allow-privileged=true", "--v=1"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
        _wait_ready(cluster, ready_timeout, apiserver_log)
    except BaseException:
        with contextlib.suppress(Exception):
            cluster.stop()
        raise
    return cluster
