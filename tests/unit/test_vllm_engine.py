"""The vllm engine's domain logic: its command from the engine options, which options are valid, its replicas'
load read from their Prometheus metrics, and a deployment that is RUNNING once every server lists the model
(no FastChat controller involved). Real vLLM servers: tests/e2e/test_deploy_vllm.py."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from aigc_admin.adapters.vllm import ReplicaLoad, parse_load
from aigc_admin.domain.deployments.entities import DeploymentStatus, Engine, EngineOptions
from aigc_admin.domain.deployments.service import DeploymentRunner, DeploymentService, EngineConfig, vllm_args
from aigc_admin.domain.deployments.templates import VLLM, render
from aigc_admin.domain.errors import DomainError
from tests.unit.test_deployment_runner import Events, FakeController, FakeRepo, FakeRuntime

METRICS = """# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="tiny"} 2.0
vllm:num_requests_running{engine="1",model_name="tiny"} 1.0
vllm:num_requests_waiting{engine="0",model_name="tiny"} 3.0
vllm:num_requests_waiting_by_reason{engine="0",model_name="tiny",reason="capacity"} 9.0
vllm:kv_cache_usage_perc{engine="0",model_name="tiny"} 0.25
vllm:kv_cache_usage_perc{engine="1",model_name="tiny"} 0.5
python_gc_objects_collected_total{generation="0"} 1234.0
"""


def test_the_load_is_summed_over_engines_and_the_fullest_kv_cache_counts() -> None:
    assert parse_load(METRICS) == ReplicaLoad(running=3, waiting=3, kv_cache_usage=0.5)
    old = "vllm:num_requests_running 1\nvllm:num_requests_waiting 0\nvllm:gpu_cache_usage_perc 0.125\n"
    assert parse_load(old) == ReplicaLoad(1, 0, 0.125)  # vLLM before 0.10 named the KV cache gauge after GPUs
    assert parse_load("process_cpu_seconds_total 3.0\n") is None  # not a vLLM server


def deployment(**kw: Any) -> Any:
    repo = FakeRepo()
    return dataclasses.replace(repo.add(), engine=Engine.VLLM, **kw)


def test_engine_options_become_vllm_arguments() -> None:
    plain = vllm_args(deployment())
    assert plain == ["--tensor-parallel-size", "1"]  # vLLM's defaults for everything else
    o = EngineOptions(max_model_len=4096, gpu_memory_utilization=0.85, dtype="bfloat16", max_loras=4,
                      max_lora_rank=64, enforce_eager=True)
    args = vllm_args(deployment(gpus_per_replica=2, quantization="awq", engine_options=o))
    assert args == ["--tensor-parallel-size", "2", "--max-model-len", "4096", "--gpu-memory-utilization", "0.85",
                    "--dtype", "bfloat16", "--quantization", "awq", "--enable-lora", "--max-loras", "4",
                    "--max-lora-rank", "64", "--enforce-eager"]


def test_the_vllm_template_renders_vllms_openai_server() -> None:
    r = render(json.dumps(VLLM), {"python": "/v/bin/python", "image": "vllm/vllm-openai", "model_path": "/m",
                                  "model_name": "tiny", "controller_address": "", "device": "cpu", "gpus": "1",
                                  "quantization_args": [], "max_gpu_memory": "", "worker_args": [],
                                  "conv_template_args": [], "engine_args": ["--enforce-eager"],
                                  "cpu_kv_cache_gib": "2"})
    assert r.command[:3] == ["/v/bin/python", "-m", "vllm.entrypoints.openai.api_server"]
    assert r.command[r.command.index("--served-model-name") + 1] == "tiny"  # the gateway passes the name through
    assert r.command[-1] == "--enforce-eager" and "{port}" in r.command
    assert r.env["VLLM_CPU_KVCACHE_SPACE"] == "2" and r.env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"


@pytest.mark.parametrize(("engine", "options", "gpus", "field"), [
    (Engine.MODEL_WORKER, EngineOptions(max_model_len=1024), 0, "engineOptions.engine"),
    (Engine.VLLM, EngineOptions(tensor_parallel_size=2), 1, "engineOptions.tensorParallelSize"),
    (Engine.VLLM, EngineOptions(max_model_len=8), 0, "engineOptions.maxModelLen"),
    (Engine.VLLM, EngineOptions(gpu_memory_utilization=0.9), 0, "engineOptions.gpuMemoryUtilization"),
    (Engine.VLLM, EngineOptions(gpu_memory_utilization=1.5), 1, "engineOptions.gpuMemoryUtilization"),
    (Engine.VLLM, EngineOptions(dtype="int3"), 0, "engineOptions.dtype"),
    (Engine.VLLM, EngineOptions(max_loras=65), 0, "engineOptions.maxLoras"),
    (Engine.VLLM, EngineOptions(max_loras=2, max_lora_rank=12), 0, "engineOptions.maxLoras"),
    (Engine.VLLM, EngineOptions(cpu_kv_cache_gib=4), 1, "engineOptions.cpuKvCacheGib"),
    (Engine.VLLM, EngineOptions(nodes=2), 0, "engineOptions.nodes"),  # multi-node without GPUs
    (Engine.VLLM, EngineOptions(nodes=17), 8, "engineOptions.nodes"),
])
def test_invalid_engine_options_name_their_field(engine: Engine, options: EngineOptions, gpus: int,
                                                 field: str) -> None:
    with pytest.raises(DomainError) as e:
        DeploymentService._check_options(engine, options, gpus)
    assert e.value.field == field


def test_multi_node_needs_kubernetes_and_splits_the_model_by_pipeline() -> None:
    with pytest.raises(DomainError, match="kubernetes"):
        DeploymentService._check_options(Engine.VLLM, EngineOptions(nodes=2), 8, "docker")
    DeploymentService._check_options(Engine.VLLM, EngineOptions(nodes=2), 8, "kubernetes")
    args = vllm_args(deployment(gpus_per_replica=8, engine_options=EngineOptions(nodes=2)))
    assert args == ["--tensor-parallel-size", "8", "--pipeline-parallel-size", "2",
                    "--distributed-executor-backend", "ray"]


def test_valid_options_and_quantization_per_engine() -> None:
    DeploymentService._check_options(Engine.VLLM, EngineOptions(tensor_parallel_size=2, max_model_len=2048,
                                                                gpu_memory_utilization=0.9, dtype="half"), 2)
    DeploymentService._check_options(Engine.MODEL_WORKER, EngineOptions(), 0)
    DeploymentService._check_numbers(1, 1, "", "awq", Engine.VLLM)
    DeploymentService._check_numbers(1, 1, "", "8bit", Engine.MODEL_WORKER)
    for quantization, engine in (("8bit", Engine.VLLM), ("awq", Engine.MODEL_WORKER)):
        with pytest.raises(DomainError, match="quantization"):
            DeploymentService._check_numbers(1, 1, "", quantization, engine)


@dataclasses.dataclass
class VllmProbe:
    model_names: tuple[str, ...]
    running: int = 1
    waiting: int = 2
    kv_cache_usage: float | None = 0.125
    speed: float = 1.0

    @property
    def queue_length(self) -> int:
        return self.running + self.waiting


class FakeVllm:
    def __init__(self) -> None:
        self.serving: dict[str, tuple[str, ...]] = {}

    async def worker_status(self, address: str) -> VllmProbe | None:
        names = self.serving.get(address)
        return VllmProbe(names) if names is not None else None

    async def load_adapter(self, address: str, name: str, path: str) -> None:
        self.serving[address] += (name,)

    async def unload_adapter(self, address: str, name: str) -> None:
        self.serving[address] = tuple(n for n in self.serving[address] if n != name)


class VllmTemplates:
    async def inference_template(self, engine: Engine) -> str:
        assert engine == Engine.VLLM
        return json.dumps(VLLM)


async def test_a_vllm_deployment_runs_once_every_server_lists_its_model_and_reports_its_load() -> None:
    repo, runtime, controller, vllm = FakeRepo(), FakeRuntime(), FakeController(), FakeVllm()
    runner = DeploymentRunner(repo=repo, runtime=runtime, controller=controller, templates=VllmTemplates(),  # type: ignore[arg-type]
                              events=Events(), owner="t", vllm=vllm,
                              engine=EngineConfig(python="/fastchat/python", image="img", controller_address="c",
                                                  device="auto", start_timeout=0.3, poll_interval=0.01,
                                                  vllm_python="/vllm/python"))
    vllm.serving = {"http://w0": ("tiny",)}  # one replica still loading: not running yet
    assert (await runner.deploy(repo.add(replicas=2, engine=Engine.VLLM).id)).status == DeploymentStatus.FAILED
    assert runtime.started[0].command[0] == "/vllm/python"  # the vLLM environment, not FastChat's

    runtime.stopped.clear()
    vllm.serving["http://w1"] = ("tiny",)
    result = await runner.deploy(repo.add(replicas=2, engine=Engine.VLLM).id)
    assert result.status == DeploymentStatus.RUNNING and controller.models == []  # no controller involved
    seen: list[Any] = []
    await runner.check_health(seen)
    assert [(h.healthy, h.running, h.waiting, h.queue_length, h.kv_cache_usage) for _, h in seen] == [
        (True, 1, 2, 3, 0.125), (True, 1, 2, 3, 0.125)]


async def test_an_adapter_follows_its_base_deployment() -> None:
    """Loaded on every base replica; loaded again where a restarted replica lost it, on the base's new addresses;
    DEGRADED while the base is not running; unloaded on undeploy."""
    repo, vllm = FakeRepo(), FakeVllm()
    runner = DeploymentRunner(repo=repo, runtime=FakeRuntime(), controller=FakeController(),  # type: ignore[arg-type]
                              templates=VllmTemplates(), events=Events(), owner="t", vllm=vllm,
                              engine=EngineConfig(python="/py", image="img", controller_address="c", device="auto"))
    base = repo.add(engine=Engine.VLLM, status=DeploymentStatus.RUNNING, worker_addresses=("http://a", "http://b"),
                    runtime_handle='{"backend": "fake", "name": "aigc-deploy-1"}')
    vllm.serving = {"http://a": ("tiny",), "http://b": ("tiny",), "http://c": ("tiny",)}
    adapter = repo.add(model_name="tiny-lora", model_path="/lora", engine=Engine.VLLM, base_deployment_id=base.id)
    result = await runner.deploy(adapter.id)
    assert result.status == DeploymentStatus.RUNNING and result.worker_addresses == ("http://a", "http://b")
    assert vllm.serving["http://a"] == ("tiny", "tiny-lora") == vllm.serving["http://b"]

    # the base's replica b was replaced by c (a restart): the adapter is loaded there and routed there
    repo.rows[base.id] = dataclasses.replace(repo.rows[base.id], worker_addresses=("http://a", "http://c"))
    await runner.check_health()
    assert vllm.serving["http://c"] == ("tiny", "tiny-lora")
    assert repo.rows[adapter.id].worker_addresses == ("http://a", "http://c")

    repo.rows[base.id] = dataclasses.replace(repo.rows[base.id], status=DeploymentStatus.PENDING)
    await runner.check_health()
    assert repo.rows[adapter.id].status == DeploymentStatus.DEGRADED
    assert repo.rows[adapter.id].reason == f"the base deployment {base.id} is pending"

    repo.rows[base.id] = dataclasses.replace(repo.rows[base.id], status=DeploymentStatus.RUNNING)
    await runner.check_health()
    assert repo.rows[adapter.id].status == DeploymentStatus.RUNNING
    await runner.undeploy(adapter.id)
    assert vllm.serving["http://a"] == ("tiny",) == vllm.serving["http://c"]
