"""A throwaway real Docker Engine (Debian's docker.io) for integration tests, and a tiny local image.

``dockerd`` runs as our child process with a private data-root, exec-root and unix socket, no
iptables and no bridge: it never touches a system daemon, and containers use ``--network host``
or ``none`` only. Nothing can be pulled, so the test image is ``FROM scratch`` + the host's static
busybox (``apt-get install -y busybox-static``).
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DOCKERD = "dockerd"
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")


@dataclass
class Dockerd:
    base_url: str  # unix:///tmp/dkrXXXX/docker.sock
    root: Path  # short directory under /tmp holding data-root, exec-root and the socket
    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self) -> None:
        """Stop the daemon (its containers die with it) and remove its directories."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        _unmount_below(self.root)
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def _unmount_below(root: Path) -> None:
    """Left-over mounts (overlay layers, netns, shm) under ``root`` would make rmtree fail."""
    try:
        mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    except OSError:
        return
    for target in sorted((m for m in mounts if m.startswith(str(root) + "/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", target], capture_output=True, check=False)


def _ping(sock: Path) -> bool:
    import socket

    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(1)
            s.connect(str(sock))
            s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            return b" 200 " in s.recv(256)
    except OSError:
        return False


def start_dockerd(workdir: Path, timeout: float = 20.0) -> Dockerd:
    """Start a private ``dockerd``; ``workdir`` keeps its log and pidfile, a short /tmp dir the rest."""
    binary = shutil.which(DOCKERD) or shutil.which(DOCKERD, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if binary is None:
        raise RuntimeError("dockerd not found: install Debian's docker.io (apt-get install -y docker.io, "
                           "or bash scripts/prepare-docker.sh)")
    workdir.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="dkr", dir="/tmp"))  # unix socket paths must stay < 108 chars
    sock = root / "docker.sock"
    log_path = workdir / "dockerd.log"
    argv = [binary, "--data-root", str(root / "data"), "--exec-root", str(root / "exec"),
            "--host", f"unix://{sock}", "--pidfile", str(workdir / "dockerd.pid"),
            "--iptables=false", "--ip6tables=false", "--bridge=none", "--storage-driver=overlay2"]
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


def _is_static_elf(path: Path) -> bool:
    """True for a 64-bit little-endian ELF without a PT_INTERP header (no dynamic loader needed)."""
    import struct

    data = path.read_bytes()[:65536]
    if data[:6] != b"\x7fELF\x02\x01":
        return False
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    types = [struct.unpack_from("<I", data, phoff + k * phentsize)[0] for k in range(phnum)]
    return 3 not in types  # PT_INTERP


def busybox_path() -> str:
    for candidate in BUSYBOX_CANDIDATES:
        if Path(candidate).is_file() and _is_static_elf(Path(candidate)):
            return candidate
    raise RuntimeError("no static busybox on this host: apt-get install -y busybox-static "
                       "(or bash scripts/prepare-docker.sh)")


def build_test_image(client: Any, tag: str = "aigc-test/busybox:latest") -> str:
    """Build ``FROM scratch`` + static busybox (sh, echo, sleep, …) without pulling anything; returns the tag."""
    busybox = Path(busybox_path()).read_bytes()
    dockerfile = (  # the RUN step runs busybox's own shell: the image has no other
        "FROM scratch\n"
        "COPY busybox /bin/busybox\n"
        'RUN ["/bin/busybox", "sh", "-c", "/bin/busybox --install -s /bin && mkdir -p /tmp /data"]\n'
        'ENV PATH=/bin\n'
        'CMD ["sh"]\n'
    )
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data, mode in (("Dockerfile", dockerfile.encode(), 0o644), ("busybox", busybox, 0o755)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    # RUN needs a network namespace; host keeps the daemon off the bridge it does not have.
    client.images.build(fileobj=buf, custom_context=True, tag=tag, pull=False, rm=True, forcerm=True,
                        network_mode="host")
    return tag
