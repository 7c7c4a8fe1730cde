"""The fine-tuning program (src/aigc_admin/engine/finetune.py) run for real by the engine's python.

Needs the engine venv and the tiny model: `bash scripts/prepare-engine.sh` (see tests/support/engine.py).
Three short trainings on CPU (LoRA merged, LoRA adapter with evaluation, full) plus quick checks: the
JSON lines on stdout, the hyper-parameters the lines show were honoured, the files saved, that the saved
weights load with transformers, the assistant-only label masking and the clean errors.
"""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import aigc_admin
from tests.support.engine import engine_env, engine_python, tiny_model_path

FINETUNE = Path(aigc_admin.__file__).parent / "engine" / "finetune.py"
SAMPLES = 20
TOKENIZER_FILES = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"}


@dataclass
class Run:
    returncode: int
    records: list[dict[str, Any]]
    stderr: str
    seconds: float

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["type"] == kind]

    def one(self, kind: str) -> dict[str, Any]:
        found = self.of(kind)
        assert len(found) == 1, f"expected one {kind!r} line, got {found}\nstderr:\n{self.stderr[-3000:]}"
        return found[0]


def run_finetune(*args: str | Path, cwd: Path, timeout: float = 120) -> Run:
    started = time.monotonic()
    proc = subprocess.run(
        [str(engine_python()), str(FINETUNE), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=engine_env(),
        timeout=timeout,
        check=False,
    )
    seconds = time.monotonic() - started
    records = []
    for line in proc.stdout.splitlines():  # stdout carries JSON lines and nothing else
        record = json.loads(line)
        assert isinstance(record, dict) and "type" in record and "ts" in record, line
        records.append(record)
    kinds = ",".join(r["type"] for r in records if r["type"] != "step")
    print(f"\n[finetune] rc={proc.returncode} {seconds:.1f}s lines: {kinds} +{len(records)} total", file=sys.stderr)
    return Run(proc.returncode, records, proc.stderr, seconds)


def run_engine_snippet(code: str, *args: str | Path, cwd: Path) -> Any:
    """Run ``code`` with the engine's python; it prints one JSON value as its last stdout line."""
    proc = subprocess.run(
        [str(engine_python()), "-c", code, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=engine_env(),
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def chat_sample(i: int) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "system", "content": "You are a calculator."},
            {"role": "user", "content": f"What is {i} plus {i}?"},
            {"role": "assistant", "content": f"{i} plus {i} is {2 * i}."},
        ]
    }


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def common_flags(data: Path, out: Path, **overrides: Any) -> list[str]:
    flags: dict[str, Any] = {
        "base-model-path": tiny_model_path(),
        "data-path": data,
        "output-dir": out,
        "epochs": 2,
        "train-batch-size": 2,
        "eval-batch-size": 4,
        "gradient-accumulation-steps": 2,
        "learning-rate": 1e-3,
        "weight-decay": 0.01,
        "warmup-ratio": 0.2,
        "model-max-length": 128,
        "logging-steps": 1,
        "save-steps": 0,
        "seed": 7,
    }
    flags.update({k.replace("_", "-"): v for k, v in overrides.items()})
    return [item for k, v in flags.items() for item in (f"--{k}", str(v))]


def expected_total_steps(samples: int, batch: int, accumulation: int, epochs: int) -> int:
    return math.ceil(math.ceil(samples / batch) / accumulation) * epochs


def assert_step_lines(run: Run, total: int, epochs: float) -> list[dict[str, Any]]:
    steps = run.of("step")
    assert [s["step"] for s in steps] == list(range(1, total + 1))  # logging_steps 1: one line per optimizer step
    assert all(s["total_steps"] == total for s in steps)
    assert all(b["epoch"] > a["epoch"] for a, b in itertools.pairwise(steps))
    assert steps[-1]["epoch"] == pytest.approx(epochs)
    assert all(isinstance(s["loss"], float) and math.isfinite(s["loss"]) and s["loss"] > 0 for s in steps)
    assert all(s["ts"] >= run.records[0]["ts"] for s in steps)
    return steps


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    engine_python()  # fail early (EngineMissing) with the way to prepare it
    tiny_model_path()
    return tmp_path_factory.mktemp("finetune")


@pytest.fixture(scope="module")
def train_file(work: Path) -> Path:
    return write_jsonl(work / "train.jsonl", [chat_sample(i) for i in range(SAMPLES)])


@pytest.fixture(scope="module")
def merged_run(work: Path, train_file: Path) -> tuple[Run, Path]:
    out = work / "merged"
    flags = common_flags(train_file, out, lr_scheduler_type="linear", save_steps=5, save_total_limit=1)
    run = run_finetune(
        *flags,
        "--lora",
        "--lora-r",
        "8",
        "--lora-alpha",
        "16",
        "--lora-dropout",
        "0.05",
        "--lora-target-modules",
        "q_proj,k_proj,v_proj,o_proj",
        "--merge",
        cwd=work,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return run, out


LOAD_CHECK = """
import json, sys, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
out, base = sys.argv[1], sys.argv[2]
model = AutoModelForCausalLM.from_pretrained(out)
tok = AutoTokenizer.from_pretrained(out)
base_model = AutoModelForCausalLM.from_pretrained(base)
ids = tok("USER: hi ASSISTANT:", return_tensors="pt").input_ids
with torch.no_grad():
    logits = model(ids).logits
q = "model.layers.0.self_attn.q_proj.weight"
changed = sorted(n for n, p in model.state_dict().items() if not torch.equal(p, base_model.state_dict()[n]))
state = model.state_dict()
print(json.dumps({"class": type(model).__name__, "logits": list(logits.shape),
                  "finite": bool(torch.isfinite(logits).all()), "q_changed": q in changed,
                  "changed": len(changed), "keys": len(state), "lora_keys": [n for n in state if "lora" in n]}))
"""


def test_lora_merged_run_logs_every_step_and_honours_the_schedule(merged_run: tuple[Run, Path]) -> None:
    run, out = merged_run
    total = expected_total_steps(SAMPLES, batch=2, accumulation=2, epochs=2)
    assert total == 10
    data, start = run.records[0], run.records[1]  # what it read (the data line), then the run's start
    assert data["type"] == "data" and data["samples"] == SAMPLES and len(data["line_sha256"]) == SAMPLES
    assert start["type"] == "start"
    assert start["total_steps"] == total and start["samples"] == SAMPLES and start["mode"] == "lora"
    assert start["effective_batch_size"] == 4 and start["max_length"] == 128
    assert 0 < start["trainable_parameters"] < start["total_parameters"]
    steps = assert_step_lines(run, total, epochs=2.0)

    # linear schedule, warmup = ceil(0.2 * 10) = 2 steps; each line shows the rate its optimizer step used
    peak, warmup = 1e-3, math.ceil(0.2 * total)
    expected = [peak * k / warmup if k < warmup else peak * (total - k) / (total - warmup) for k in range(total)]
    assert [s["learning_rate"] for s in steps] == pytest.approx(expected, abs=1e-9)
    assert steps[0]["learning_rate"] < peak and max(s["learning_rate"] for s in steps) == pytest.approx(peak)

    done = run.records[-1]
    assert done["type"] == "done" and done["saved"] == "merged" and done["global_step"] == total
    assert done["output_dir"] == str(out.resolve())
    assert done["final_loss"] == steps[-1]["loss"] and math.isfinite(done["train_runtime"])
    assert not run.of("error") and not run.of("eval")
    print(
        f"[merged] {total} steps, train {done['train_runtime']:.2f}s, wall {run.seconds:.1f}s, "
        f"loss {steps[0]['loss']} -> {steps[-1]['loss']}",
        file=sys.stderr,
    )


def test_lora_merged_output_is_a_servable_model(merged_run: tuple[Run, Path], work: Path) -> None:
    _, out = merged_run
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "generation_config.json"} <= names
    assert TOKENIZER_FILES <= names
    assert "adapter_config.json" not in names and "adapter_model.safetensors" not in names
    # save_steps 5 + save_total_limit 1: the checkpoint at step 5 was rotated out by the one at step 10
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-10"]
    assert json.loads((out / "config.json").read_text())["use_cache"] is True

    loaded = run_engine_snippet(LOAD_CHECK, out, tiny_model_path(), cwd=work)
    assert loaded["class"] == "LlamaForCausalLM" and loaded["finite"]
    assert loaded["logits"][-1] == 1024
    assert loaded["lora_keys"] == []  # merged into the base weights, no adapter left
    assert loaded["q_changed"] and loaded["changed"] == 4 * 2  # exactly q/k/v/o of both layers moved


def test_lora_without_merge_saves_the_adapter_and_evaluates(work: Path, train_file: Path) -> None:
    validation = write_jsonl(work / "validation.jsonl", [chat_sample(100 + i) for i in range(6)])
    out = work / "adapter"
    flags = common_flags(train_file, out, epochs=1, validation_path=validation, eval_steps=2)
    run = run_finetune(*flags, "--lora", "--lora-r", "4", "--lora-target-modules", "q_proj,v_proj", cwd=work)
    assert run.returncode == 0, run.stderr[-3000:]

    total = expected_total_steps(SAMPLES, batch=2, accumulation=2, epochs=1)
    assert run.one("start")["eval_samples"] == 6
    assert_step_lines(run, total, epochs=1.0)
    evals = run.of("eval")
    assert [e["step"] for e in evals] == [s for s in range(1, total + 1) if s % 2 == 0]  # eval_steps 2
    assert all(math.isfinite(e["eval_loss"]) and e["total_steps"] == total for e in evals)
    assert run.one("done")["saved"] == "adapter"

    names = {p.name for p in out.iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json"} <= names and TOKENIZER_FILES <= names
    assert "model.safetensors" not in names and "config.json" not in names
    assert not list(out.glob("checkpoint-*"))  # save_steps 0: no checkpoints
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert adapter["r"] == 4 and sorted(adapter["target_modules"]) == ["q_proj", "v_proj"]
    assert adapter["base_model_name_or_path"] == str(tiny_model_path())


def test_full_fine_tuning_saves_full_weights(work: Path, train_file: Path) -> None:
    out = work / "full"
    flags = common_flags(
        train_file,
        out,
        epochs=1,
        train_batch_size=4,
        gradient_accumulation_steps=1,
        learning_rate=5e-4,
        warmup_ratio=0.4,
    )  # default scheduler: cosine
    run = run_finetune(*flags, cwd=work)
    assert run.returncode == 0, run.stderr[-3000:]

    total = expected_total_steps(SAMPLES, batch=4, accumulation=1, epochs=1)
    start = run.one("start")
    assert start["mode"] == "full" and start["trainable_parameters"] == start["total_parameters"]
    steps = assert_step_lines(run, total, epochs=1.0)
    rates = [s["learning_rate"] for s in steps]
    top = rates.index(max(rates))
    assert rates[0] < 5e-4 and max(rates) == pytest.approx(5e-4)
    assert rates[:top] == sorted(rates[:top]) and rates[top:] == sorted(rates[top:], reverse=True)
    assert run.one("done")["saved"] == "full"

    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors"} <= names and TOKENIZER_FILES <= names
    assert "adapter_config.json" not in names
    loaded = run_engine_snippet(LOAD_CHECK, out, tiny_model_path(), cwd=work)
    assert loaded["class"] == "LlamaForCausalLM" and loaded["finite"]
    assert loaded["changed"] == loaded["keys"]  # every weight trained (unused embedding rows: weight decay)


def test_malformed_line_is_a_clean_error_naming_the_line(work: Path, train_file: Path) -> None:
    lines = train_file.read_text().splitlines()
    lines[2] = '{"messages": [{"role": "user", "content": "unterminated'
    bad = work / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    run = run_finetune(*common_flags(bad, work / "bad-out"), "--lora", cwd=work)
    assert run.returncode == 1
    error = run.one("error")
    assert [r["type"] for r in run.records] == ["error"]
    assert "line 3" in error["message"] and "invalid JSON" in error["message"] and str(bad) in error["message"]
    assert "Traceback" not in run.stderr

    no_reply = write_jsonl(work / "no-reply.jsonl", [chat_sample(0), {"messages": [{"role": "user", "content": "hi"}]}])
    run = run_finetune(*common_flags(no_reply, work / "bad-out"), cwd=work)
    assert run.returncode == 1 and "line 2" in run.one("error")["message"]

    empty = work / "empty.jsonl"
    empty.write_text("\n")
    run = run_finetune(*common_flags(empty, work / "bad-out"), cwd=work)
    assert run.returncode == 1 and "no samples" in run.one("error")["message"]

    run = run_finetune(*common_flags(work / "missing.jsonl", work / "bad-out"), cwd=work)
    assert run.returncode == 1 and "not found" in run.one("error")["message"]


def test_unknown_base_model_and_bad_arguments_are_clean_errors(work: Path, train_file: Path) -> None:
    missing = work / "no-such-model"
    flags = common_flags(train_file, work / "err-out")
    flags[flags.index("--base-model-path") + 1] = str(missing)
    run = run_finetune(*flags, "--lora", "--merge", cwd=work)
    assert run.returncode == 1
    assert [r["type"] for r in run.records] == ["error"]
    assert "base model not found" in run.records[0]["message"] and str(missing) in run.records[0]["message"]

    not_a_model = work / "not-a-model"
    not_a_model.mkdir()
    flags[flags.index("--base-model-path") + 1] = str(not_a_model)
    run = run_finetune(*flags, cwd=work)
    assert run.returncode == 1 and "config.json" in run.one("error")["message"]

    run = run_finetune("--data-path", train_file, "--output-dir", work / "err-out", cwd=work)  # no base model
    assert run.returncode == 2 and "--base-model-path" in run.one("error")["message"]

    run = run_finetune(*common_flags(train_file, work / "err-out", gradient_accumulation_steps=0), cwd=work)
    assert run.returncode == 1 and "--gradient-accumulation-steps" in run.one("error")["message"]


MASK_CHECK = """
import importlib.util, json, sys
from transformers import AutoTokenizer
spec = importlib.util.spec_from_file_location("finetune", sys.argv[1])
ft = importlib.util.module_from_spec(spec); spec.loader.exec_module(ft)
tok = AutoTokenizer.from_pretrained(sys.argv[2])
messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"},
            {"role": "assistant", "content": "Hello friend"}, {"role": "user", "content": "Bye"},
            {"role": "assistant", "content": "See you"}]
def case(max_length):
    f = ft.tokenize_conversation(messages, tok, max_length)
    return {"ids": f["input_ids"], "labels": f["labels"], "mask": f["attention_mask"],
            "pieces": [tok.decode([i]) for i in f["input_ids"]]}
result = {"template": case(512), "truncated": case(12), "has_template": bool(tok.chat_template)}
tok.chat_template = None
result["plain"] = case(512)
batch = ft.PadCollator(tok.pad_token_id)([ft.tokenize_conversation(messages, tok, 512),
                                           ft.tokenize_conversation(messages[:3], tok, 512)])
result["batch"] = {k: v.tolist() for k, v in batch.items()}
result["pad"] = tok.pad_token_id
print(json.dumps(result))
"""


def test_labels_mask_everything_but_the_assistant_replies(work: Path) -> None:
    r = run_engine_snippet(MASK_CHECK, FINETUNE, tiny_model_path(), cwd=work)
    assert r["has_template"]
    for name, learned_text, other_text in [
        ("template", " Hello friend</s> See you</s>", "<s>Be brief. USER: Hi there ASSISTANT:USER: Bye ASSISTANT:"),
        (
            "plain",
            " Hello friend</s> See you</s>",
            "<s>system: Be brief.\nuser: Hi there\nassistant:\nuser: Bye\nassistant:\n",
        ),
    ]:
        case = r[name]
        assert len(case["ids"]) == len(case["labels"]) == len(case["mask"]) and set(case["mask"]) == {1}
        learned = [i for i, label in enumerate(case["labels"]) if label != -100]
        assert all(case["labels"][i] == case["ids"][i] for i in learned)
        assert set(case["labels"][i] for i in range(len(case["ids"])) if i not in learned) == {-100}
        assert "".join(case["pieces"][i] for i in learned) == learned_text, name
        assert "".join(p for i, p in enumerate(case["pieces"]) if i not in learned) == other_text, name

    truncated = r["truncated"]
    assert len(truncated["ids"]) == 12 and truncated["ids"] == r["template"]["ids"][:12]
    assert set(truncated["labels"]) == {-100}  # the first reply starts later: nothing to learn (dropped in training)

    batch, long_len = r["batch"], len(r["plain"]["ids"])
    assert all(len(row) == long_len for rows in batch.values() for row in rows)
    short = batch["attention_mask"][1].index(0)
    assert set(batch["labels"][1][short:]) == {-100} and set(batch["input_ids"][1][short:]) == {r["pad"]}
    assert batch["input_ids"][0] == r["plain"]["ids"] and batch["labels"][0] == r["plain"]["labels"]
