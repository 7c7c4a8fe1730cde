"""vLLM's OpenAI server (the ``vllm`` engine), as the platform probes and steers each replica.

A replica is healthy when its ``/health`` answers 200 (503 once its engine died) and ready when ``/v1/models`` lists
its model (the server listens only once the model is loaded). Its load is read from its Prometheus ``/metrics``:
``vllm:num_requests_running``, ``vllm:num_requests_waiting`` and the KV cache's use (``vllm:kv_cache_usage_perc``;
``vllm:gpu_cache_usage_perc`` before vLLM 0.10). LoRA adapters are loaded into a running replica by
``/v1/load_lora_adapter`` (the server runs with ``VLLM_ALLOW_RUNTIME_LORA_UPDATING``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from dataclasses import dataclass

import httpx

log = logging.getLogger(__name__)

RUNNING = "vllm:num_requests_running"
WAITING = "vllm:num_requests_waiting"
KV_CACHE = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})?\s+(\S+)")  # name{labels} value [timestamp]


@dataclass(frozen=True)
class ReplicaLoad:
    running: int
    waiting: int
    kv_cache_usage: float | None


@dataclass(frozen=True)
class VllmProbe:
    """What one replica told: the models it serves (base and adapters) and its load."""

    model_names: tuple[str, ...]
    running: int = 0
    waiting: int = 0
    kv_cache_usage: float | None = None
    speed: float = 1.0

    @property
    def queue_length(self) -> int:
        return self.running + self.waiting


def parse_load(text: str) -> ReplicaLoad | None:
    """The load in a Prometheus text exposition (summed over label sets: one per engine); None without vLLM's."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        sample = _SAMPLE.match(line) if line.startswith("vllm:") else None
        if sample is None or sample[1] not in (RUNNING, WAITING, *KV_CACHE):
            continue
        name = sample[1]
        try:
            value = float(sample[2])
        except ValueError:
            continue
        if name in KV_CACHE:
            values[name] = max(values.get(name, 0.0), value)  # one engine's share: the fullest one
        else:
            values[name] = values.get(name, 0.0) + value
    if RUNNING not in values and WAITING not in values:
        return None
    kv = next((values[k] for k in KV_CACHE if k in values), None)
    return ReplicaLoad(int(values.get(RUNNING, 0)), int(values.get(WAITING, 0)), kv)


class VllmError(Exception):
    """A replica refused or failed a management call (loading an adapter)."""


class VllmClient:
    def __init__(self, http: httpx.AsyncClient, *, timeout: float = 3.0) -> None:
        self._http = http
        self._timeout = timeout

    async def healthy(self, address: str) -> bool:
        try:
            return (await self._http.get(f"{address}/health", timeout=self._timeout)).status_code == 200
        except httpx.HTTPError:
            return False

    async def models(self, address: str) -> list[str] | None:
        try:
            r = await self._http.get(f"{address}/v1/models", timeout=self._timeout)
            if r.status_code != 200:
                return None
            return [str(m["id"]) for m in r.json().get("data", []) if isinstance(m, dict) and "id" in m]
        except (httpx.HTTPError, ValueError, AttributeError):
            return None

    async def load(self, address: str) -> ReplicaLoad | None:
        try:
            r = await self._http.get(f"{address}/metrics", timeout=self._timeout)
        except httpx.HTTPError:
            return None
        return parse_load(r.text) if r.status_code == 200 else None

    async def queue_length(self, address: str) -> int | None:
        """Running plus waiting requests (admission control's signal); None when the replica does not answer."""
        load = await self.load(address)
        return None if load is None else load.running + load.waiting

    async def worker_status(self, address: str) -> VllmProbe | None:
        """Healthy, ready (its models listed) and its load; None when it does not answer or its engine is dead."""
        healthy, names, load = await asyncio.gather(self.healthy(address), self.models(address), self.load(address))
        if not healthy or names is None:
            return None
        if load is None:
            return VllmProbe(tuple(names))
        return VllmProbe(tuple(names), load.running, load.waiting, load.kv_cache_usage)

    async def load_adapter(self, address: str, name: str, path: str) -> None:
        """Serve the LoRA adapter at ``path`` as model ``name`` on this replica (loaded already: fine). A merged LoRA
        fine-tune keeps its adapter in ``adapter/`` below its weights: that one is served."""
        if os.path.isfile(os.path.join(path, "adapter", "adapter_config.json")):
            path = os.path.join(path, "adapter")
        try:
            r = await self._http.post(f"{address}/v1/load_lora_adapter", json={"lora_name": name, "lora_path": path},
                                      timeout=120)
        except httpx.HTTPError as e:
            raise VllmError(f"{address} did not answer: {e}") from None
        if r.status_code != 200 and "already been loaded" not in r.text:
            raise VllmError(f"{address} refused the adapter ({r.status_code}): {r.text[:300]}")

    async def unload_adapter(self, address: str, name: str) -> None:
        try:
            await self._http.post(f"{address}/v1/unload_lora_adapter", json={"lora_name": name}, timeout=30)
        except httpx.HTTPError as e:
            log.info("could not unload adapter %s from %s: %s", name, address, e)
