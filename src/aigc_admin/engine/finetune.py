#!/usr/bin/env python3
"""Fine-tune a causal language model on chat JSONL: transformers ``Trainer``, LoRA (peft) or full.

A standalone program for the engine environment (torch, transformers, peft, accelerate): it never
imports ``aigc_admin``. Module level uses the standard library only; torch/transformers/peft are
imported inside functions, so input errors are reported before the slow imports and tests can import
:func:`tokenize_conversation` cheaply.

Data: JSON Lines, one sample per line, ``{"messages": [{"role": "system"|"user"|"assistant",
"content": "..."}, ...]}`` (FastChat's ``{"conversations": [{"from": "human"|"gpt", "value": ...}]}``
is accepted too). Blank lines are skipped. Each sample is rendered with the base tokenizer's chat
template when it has one (else ``role: content`` lines), the loss is computed on assistant tokens only
(labels are -100 everywhere else), samples are truncated to ``--model-max-length`` tokens and padded
per batch.

Output (stdout): one JSON object per line, flushed, and nothing else — every other library's output
is sent to stderr (even writes to file descriptor 1)::

    {"type": "start", "total_steps": T, "samples": n, "eval_samples": m, "skipped": k, "epochs": E,
     "train_batch_size": b, "eval_batch_size": e, "gradient_accumulation_steps": a, "world_size": w,
     "effective_batch_size": b*a*w, "learning_rate": lr, "max_length": L, "mode": "lora"|"full",
     "device": "cpu"|"cuda", "trainable_parameters": p, "total_parameters": q, "ts": unix}
    {"type": "step", "step": N, "total_steps": T, "epoch": E, "loss": L, "learning_rate": LR,
     "grad_norm": G, "ts": unix}                      # every --logging-steps optimizer steps
    {"type": "eval", "step": N, "total_steps": T, "epoch": E, "eval_loss": L, "eval_runtime": s,
     "ts": unix}                                      # every --eval-steps with --validation-path
    {"type": "done", "output_dir": D, "saved": "adapter"|"merged"|"full", "global_step": N,
     "train_runtime": s, "train_loss": mean, "final_loss": L, "ts": unix}
    {"type": "error", "message": "...", "ts": unix}  # then exit code 1 (2 for bad arguments)

``loss`` is the mean training loss since the previous step line; ``learning_rate`` is the rate that
optimizer step used (transformers' convention); non-finite numbers are written as ``null``.

Saved to ``--output-dir``: LoRA → the adapter (``adapter_model.safetensors``, ``adapter_config.json``)
and the tokenizer; ``--lora --merge`` or full fine-tuning → full weights (``config.json``,
``*.safetensors``) and the tokenizer, which FastChat's model_worker serves directly (``--lora --merge`` keeps
the adapter in ``adapter/`` below them too, for vLLM to serve on its base model). Intermediate
checkpoints (``checkpoint-N``, every ``--save-steps``, at most ``--save-total-limit``) go below it.

Multi-GPU: run it under ``torchrun --nproc_per_node N``; Trainer distributes, rank 0 logs and saves.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import os
import sys
import time
import traceback
from typing import Any, TextIO

ROLE_ALIASES = {
    "system": "system",
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "gpt": "assistant",
    "bot": "assistant",
    "model": "assistant",
}
IGNORE_INDEX = -100

_out: TextIO = sys.stdout


class InputError(Exception):
    """A problem with the arguments or the data: reported as one error line, exit code 1."""


# ---------------------------------------------------------------------------------------------- output


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def emit(kind: str, **fields: Any) -> None:
    """Write one JSON log line to the real stdout and flush it."""
    record = {"type": kind, **fields, "ts": round(time.time(), 3)}
    _out.write(json.dumps(_json_safe(record), allow_nan=False) + "\n")
    _out.flush()


def _claim_stdout() -> None:
    """Keep file descriptor 1 for the JSON lines; send everything else written to stdout to stderr."""
    global _out
    sys.stdout.flush()
    json_fd = os.dup(1)
    os.dup2(2, 1)
    _out = os.fdopen(json_fd, "w", buffering=1, encoding="utf-8")
    sys.stdout = sys.stderr


def _is_main_process() -> bool:
    return os.environ.get("RANK", "0") == "0"


# ------------------------------------------------------------------------------------------- arguments


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        emit("error", message=f"bad arguments: {message}")
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="finetune.py", description="Fine-tune a causal LM on chat JSONL (LoRA or full).")
    io = p.add_argument_group("data and model")
    io.add_argument("--base-model-path", required=True, help="local model directory (or a hub id when online)")
    io.add_argument("--data-path", required=True, help='training data, JSON Lines of {"messages": [...]}')
    io.add_argument("--validation-path", default=None, help="validation data, same format (enables evaluation)")
    io.add_argument("--output-dir", required=True, help="where the adapter or the weights are saved")
    hp = p.add_argument_group("hyper-parameters")
    hp.add_argument("--epochs", type=float, default=1.0, help="number of training epochs")
    hp.add_argument("--max-steps", type=int, default=-1, help="stop after this many optimizer steps (-1: epochs)")
    hp.add_argument("--train-batch-size", type=int, default=1, help="per-device training batch size")
    hp.add_argument("--eval-batch-size", type=int, default=1, help="per-device evaluation batch size")
    hp.add_argument("--gradient-accumulation-steps", type=int, default=1)
    hp.add_argument("--learning-rate", type=float, default=2e-5)
    hp.add_argument("--weight-decay", type=float, default=0.0)
    hp.add_argument("--warmup-ratio", type=float, default=0.0, help="fraction of the steps for linear warmup")
    hp.add_argument("--lr-scheduler-type", default="cosine", help="transformers scheduler name (cosine, linear, …)")
    hp.add_argument("--model-max-length", type=int, default=2048, help="samples are truncated to this many tokens")
    hp.add_argument("--eval-steps", type=int, default=0, help="evaluate every N steps (0: once per epoch)")
    hp.add_argument("--save-steps", type=int, default=0, help="checkpoint every N steps (0: no checkpoints)")
    hp.add_argument("--save-total-limit", type=int, default=0, help="keep at most N checkpoints (0: all)")
    hp.add_argument("--logging-steps", type=int, default=1, help="one step line every N optimizer steps")
    hp.add_argument("--seed", type=int, default=42)
    hp.add_argument("--gradient-checkpointing", action="store_true")
    hp.add_argument("--bf16", action="store_true", help="bfloat16 weights and mixed precision (GPU)")
    hp.add_argument("--fp16", action="store_true", help="float16 mixed precision (GPU)")
    lo = p.add_argument_group("LoRA")
    lo.add_argument("--lora", action="store_true", help="train a LoRA adapter instead of all weights")
    lo.add_argument("--lora-r", type=int, default=8)
    lo.add_argument("--lora-alpha", type=int, default=16)
    lo.add_argument("--lora-dropout", type=float, default=0.05)
    lo.add_argument("--lora-target-modules", default="q_proj,k_proj,v_proj,o_proj", help="comma-separated")
    lo.add_argument("--merge", action="store_true", help="with --lora: save merged full weights, not the adapter")
    return p


def validate_args(args: argparse.Namespace) -> None:
    checks = [
        (args.epochs > 0 or args.max_steps > 0, "--epochs must be > 0"),
        (args.train_batch_size >= 1, "--train-batch-size must be >= 1"),
        (args.eval_batch_size >= 1, "--eval-batch-size must be >= 1"),
        (args.gradient_accumulation_steps >= 1, "--gradient-accumulation-steps must be >= 1"),
        (args.learning_rate > 0, "--learning-rate must be > 0"),
        (args.weight_decay >= 0, "--weight-decay must be >= 0"),
        (0 <= args.warmup_ratio <= 1, "--warmup-ratio must be between 0 and 1"),
        (args.model_max_length >= 2, "--model-max-length must be >= 2"),
        (args.eval_steps >= 0, "--eval-steps must be >= 0"),
        (args.save_steps >= 0, "--save-steps must be >= 0"),
        (args.save_total_limit >= 0, "--save-total-limit must be >= 0"),
        (args.logging_steps >= 1, "--logging-steps must be >= 1"),
        (args.lora_r >= 1, "--lora-r must be >= 1"),
        (0 <= args.lora_dropout < 1, "--lora-dropout must be in [0, 1)"),
        (not (args.bf16 and args.fp16), "--bf16 and --fp16 are exclusive"),
        (bool(_target_modules(args)) or not args.lora, "--lora-target-modules is empty"),
    ]
    for ok, message in checks:
        if not ok:
            raise InputError(message)
    base = args.base_model_path
    looks_local = os.path.isabs(base) or base.startswith((".", "~")) or os.path.exists(base)  # else: a hub id
    if looks_local:
        base = os.path.expanduser(base)
        if not os.path.isdir(base):
            raise InputError(f"base model not found: {args.base_model_path}")
        if not os.path.isfile(os.path.join(base, "config.json")):
            raise InputError(f"base model path has no config.json (not a model directory): {args.base_model_path}")
        args.base_model_path = base
    if os.path.exists(args.output_dir) and not os.path.isdir(args.output_dir):
        raise InputError(f"output dir exists and is not a directory: {args.output_dir}")


def _target_modules(args: argparse.Namespace) -> list[str]:
    return [m.strip() for m in str(args.lora_target_modules).split(",") if m.strip()]


# ------------------------------------------------------------------------------------------------ data


def _normalize_sample(obj: Any, where: str) -> list[dict[str, str]]:
    if not isinstance(obj, dict):
        raise InputError(f'{where}: expected a JSON object with a "messages" list')
    raw = obj.get("messages")
    fastchat = raw is None and isinstance(obj.get("conversations"), list)
    if fastchat:
        raw = obj["conversations"]
    if not isinstance(raw, list) or not raw:
        raise InputError(f'{where}: expected a non-empty "messages" list')
    messages = []
    for k, m in enumerate(raw, start=1):
        role = m.get("from" if fastchat else "role") if isinstance(m, dict) else None
        content = m.get("value" if fastchat else "content") if isinstance(m, dict) else None
        if not isinstance(role, str) or role.lower() not in ROLE_ALIASES:
            raise InputError(f"{where}: message {k} has no valid role (system, user or assistant)")
        if not isinstance(content, str):
            raise InputError(f"{where}: message {k} has no string content")
        messages.append({"role": ROLE_ALIASES[role.lower()], "content": content})
    if not any(m["role"] == "assistant" for m in messages):
        raise InputError(f"{where}: no assistant message (nothing to learn)")
    return messages


def load_conversations(path: str, what: str = "data") -> list[list[dict[str, str]]]:
    """Read and check a chat JSONL file; errors name the file and the 1-based line number."""
    if not os.path.isfile(path):
        raise InputError(f"{what} file not found: {path}")
    samples = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{what} file {path} line {n}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{where}: invalid JSON ({exc.msg} at column {exc.colno})") from None
            samples.append(_normalize_sample(obj, where))
    if not samples:
        raise InputError(f"{what} file has no samples: {path}")
    return samples


def _render(tokenizer: Any, messages: list[dict[str, str]], generation_prompt: bool = False) -> str:
    return str(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt))


def _try_render(tokenizer: Any, messages: list[dict[str, str]], generation_prompt: bool) -> str | None:
    try:
        return _render(tokenizer, messages, generation_prompt)
    except Exception:  # some templates reject a prefix (e.g. one that does not end with a user turn)
        return None


def render_conversation(messages: list[dict[str, str]], tokenizer: Any) -> tuple[str, list[tuple[int, int]]]:
    """The sample's text and the character spans the model learns (assistant replies).

    With a chat template, the reply to learn is what rendering the conversation up to and including
    that reply adds to rendering it up to the reply's generation prompt (so role headers are not
    learned, the end-of-turn token is). Without one: ``role: content`` lines, replies end with EOS.
    """
    if getattr(tokenizer, "chat_template", None):
        full = _render(tokenizer, messages)
        spans: list[tuple[int, int]] = []
        search_from = 0
        for i, m in enumerate(messages):
            if m["role"] != "assistant":
                continue
            upto = _render(tokenizer, messages[: i + 1])
            start = None
            for generation_prompt in (True, False):
                before = _try_render(tokenizer, messages[:i], generation_prompt) if i else ""
                if before is not None and full.startswith(upto) and upto.startswith(before):
                    start = len(before)
                    break
            if start is not None:
                spans.append((start, len(upto)))
                search_from = len(upto)
            else:  # a template whose renderings are not prefixes of each other: find the reply itself
                pos = full.find(m["content"], search_from)
                if pos < 0:
                    continue
                end = pos + len(m["content"])
                eos = tokenizer.eos_token or ""
                if eos and full.startswith(eos, end):
                    end += len(eos)
                spans.append((pos, end))
                search_from = end
        return full, spans
    text = tokenizer.bos_token or ""
    spans = []
    for m in messages:
        text += f"{m['role']}: "
        if m["role"] == "assistant":
            start = len(text)
            text += m["content"] + (tokenizer.eos_token or "")
            spans.append((start, len(text)))
        else:
            text += m["content"]
        text += "\n"
    return text, spans


def tokenize_conversation(messages: list[dict[str, str]], tokenizer: Any, max_length: int) -> dict[str, list[int]]:
    """``input_ids``, ``attention_mask`` and ``labels`` (-100 outside assistant replies), truncated."""
    text, spans = render_conversation(messages, tokenizer)

    def learned(start: int, end: int) -> bool:  # the token overlaps a reply (" Hello" may start before it)
        return end > start and any(start < e and end > s for s, e in spans)

    ids: list[int] = []
    labels: list[int] = []
    if getattr(tokenizer, "is_fast", False):
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        for token_id, (start, end) in zip(enc["input_ids"], enc["offset_mapping"], strict=True):
            ids.append(token_id)
            labels.append(token_id if learned(start, end) else IGNORE_INDEX)
    else:  # no offsets: tokenize the learned and the other pieces separately
        cuts = sorted({0, len(text), *[c for span in spans for c in span]})
        for start, end in itertools.pairwise(cuts):
            piece = tokenizer(text[start:end], add_special_tokens=False)["input_ids"]
            ids.extend(piece)
            labels.extend(piece if learned(start, end) else [IGNORE_INDEX] * len(piece))
    ids, labels = ids[:max_length], labels[:max_length]
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels}


def tokenize_all(
    samples: list[list[dict[str, str]]], tokenizer: Any, max_length: int
) -> tuple[list[dict[str, list[int]]], int]:
    """Tokenized samples that still have something to learn after truncation, and how many were dropped."""
    kept = []
    for messages in samples:
        features = tokenize_conversation(messages, tokenizer, max_length)
        if any(label != IGNORE_INDEX for label in features["labels"]):
            kept.append(features)
    return kept, len(samples) - len(kept)


class PadCollator:
    """Pads a batch to its longest sample: pad id for inputs, 0 for the mask, -100 for labels."""

    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id

    def __call__(self, features: list[dict[str, list[int]]]) -> dict[str, Any]:
        import torch

        width = max(len(f["input_ids"]) for f in features)
        pads = {"input_ids": self.pad_token_id, "attention_mask": 0, "labels": IGNORE_INDEX}
        return {
            key: torch.tensor([f[key] + [pad] * (width - len(f[key])) for f in features], dtype=torch.long)
            for key, pad in pads.items()
        }


# -------------------------------------------------------------------------------------------- training


def _make_log_callback(info: dict[str, Any]) -> Any:
    from transformers import TrainerCallback

    class JsonLogCallback(TrainerCallback):  # type: ignore[misc]
        def __init__(self) -> None:
            self.last_loss: float | None = None
            self.summary: dict[str, Any] = {}

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.is_world_process_zero:
                emit("start", total_steps=state.max_steps, **info)

        def on_log(
            self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
        ) -> None:
            if not state.is_world_process_zero or not logs:
                return
            common = {"step": state.global_step, "total_steps": state.max_steps, "epoch": _round(state.epoch)}
            if "eval_loss" in logs:
                emit("eval", **common, eval_loss=logs["eval_loss"], eval_runtime=logs.get("eval_runtime"))
            elif "loss" in logs:
                self.last_loss = logs["loss"]
                emit(
                    "step",
                    **common,
                    loss=logs["loss"],
                    learning_rate=logs.get("learning_rate"),
                    grad_norm=logs.get("grad_norm"),
                )
            elif "train_runtime" in logs:
                self.summary = dict(logs)

    return JsonLogCallback()


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def line_digests(path: str, limit: int = 10_000) -> list[str]:
    """What the program read, as a log can show it without the data: the first 16 hex digits of the SHA-256 of
    each non-blank line (white space at its ends removed), at most ``limit`` of them."""
    out: list[str] = []
    with open(path, "rb") as f:
        for raw in f:
            if raw.strip() and len(out) < limit:
                out.append(hashlib.sha256(raw.strip()).hexdigest()[:16])
    return out


def train(args: argparse.Namespace) -> None:
    train_samples = load_conversations(args.data_path, "data")
    if _is_main_process():
        emit("data", path=args.data_path, samples=len(train_samples), line_sha256=line_digests(args.data_path))
    eval_samples = load_conversations(args.validation_path, "validation") if args.validation_path else []
    os.makedirs(args.output_dir, exist_ok=True)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback, Trainer, TrainingArguments
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_warning()
    cuda = torch.cuda.is_available()

    try:
        tokenizer = AutoTokenizer.from_pretrained(args.base_model_path)
    except Exception as exc:
        raise InputError(f"cannot load the tokenizer of base model {args.base_model_path}: {exc}") from exc
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    tokenizer.padding_side = "right"

    dtype = torch.bfloat16 if args.bf16 else torch.float32
    try:
        model = AutoModelForCausalLM.from_pretrained(args.base_model_path, dtype=dtype)
    except Exception as exc:
        raise InputError(f"cannot load base model {args.base_model_path}: {exc}") from exc
    max_length = args.model_max_length
    positions = getattr(model.config, "max_position_embeddings", None)
    if isinstance(positions, int) and max_length > positions:
        print(
            f"finetune: --model-max-length {max_length} > the model's {positions} positions: using {positions}",
            file=sys.stderr,
        )
        max_length = positions

    train_set, skipped = tokenize_all(train_samples, tokenizer, max_length)
    eval_set, eval_skipped = tokenize_all(eval_samples, tokenizer, max_length)
    if not train_set:
        raise InputError(f"no training sample keeps an assistant token within {max_length} tokens")
    if eval_samples and not eval_set:
        raise InputError(f"no validation sample keeps an assistant token within {max_length} tokens")

    model.config.use_cache = False
    if args.lora:
        from peft import LoraConfig, get_peft_model

        lora_config = LoraConfig(
            r=args.lora_r,
            lora_alpha=args.lora_alpha,
            lora_dropout=args.lora_dropout,
            target_modules=_target_modules(args),
            bias="none",
            task_type="CAUSAL_LM",
        )
        try:
            model = get_peft_model(model, lora_config)
        except ValueError as exc:
            raise InputError(f"LoRA: {exc}") from exc
        if args.gradient_checkpointing:
            model.enable_input_require_grads()

    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    evaluate = bool(eval_set)
    training_args = TrainingArguments(
        output_dir=args.output_dir,
        num_train_epochs=args.epochs,
        max_steps=args.max_steps,
        per_device_train_batch_size=args.train_batch_size,
        per_device_eval_batch_size=args.eval_batch_size,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        learning_rate=args.learning_rate,
        weight_decay=args.weight_decay,
        warmup_ratio=args.warmup_ratio,
        lr_scheduler_type=args.lr_scheduler_type,
        logging_strategy="steps",
        logging_steps=args.logging_steps,
        save_strategy="steps" if args.save_steps > 0 else "no",
        save_steps=args.save_steps if args.save_steps > 0 else 500,
        save_total_limit=args.save_total_limit or None,
        eval_strategy=("steps" if args.eval_steps > 0 else "epoch") if evaluate else "no",
        eval_steps=args.eval_steps if evaluate and args.eval_steps > 0 else None,
        prediction_loss_only=True,
        seed=args.seed,
        data_seed=args.seed,
        bf16=args.bf16,
        fp16=args.fp16,
        gradient_checkpointing=args.gradient_checkpointing,
        use_cpu=not cuda,
        report_to="none",
        disable_tqdm=True,
        remove_unused_columns=False,
        dataloader_num_workers=0,
        save_safetensors=True,
    )
    info = {
        "samples": len(train_set),
        "eval_samples": len(eval_set),
        "skipped": skipped + eval_skipped,
        "epochs": args.epochs,
        "train_batch_size": args.train_batch_size,
        "eval_batch_size": args.eval_batch_size,
        "gradient_accumulation_steps": args.gradient_accumulation_steps,
        "world_size": training_args.world_size,
        "effective_batch_size": args.train_batch_size * args.gradient_accumulation_steps * training_args.world_size,
        "learning_rate": args.learning_rate,
        "max_length": max_length,
        "mode": "lora" if args.lora else "full",
        "device": "cuda" if cuda else "cpu",
        "trainable_parameters": trainable,
        "total_parameters": total,
    }
    log_callback = _make_log_callback(info)
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=train_set,
        eval_dataset=eval_set or None,
        data_collator=PadCollator(int(tokenizer.pad_token_id)),
        processing_class=tokenizer,
        callbacks=[log_callback],
    )
    trainer.remove_callback(PrinterCallback)  # it prints every log dict; the JSON lines replace it
    result = trainer.train()

    if args.lora and args.merge:
        saved = "merged"
        if trainer.is_world_process_zero():
            # the adapter too: a vllm deployment of the base model can serve it without a merged copy
            trainer.model.save_pretrained(os.path.join(args.output_dir, "adapter"))
            merged = trainer.model.merge_and_unload()
            merged.config.use_cache = True
            merged.save_pretrained(args.output_dir, safe_serialization=True)
            tokenizer.save_pretrained(args.output_dir)
    else:
        saved = "adapter" if args.lora else "full"
        model_to_save = trainer.model.get_base_model() if args.lora else trainer.model
        model_to_save.config.use_cache = True
        trainer.save_model(args.output_dir)  # rank 0 only; the tokenizer (processing_class) too
    if trainer.is_world_process_zero():
        emit(
            "done",
            output_dir=os.path.abspath(args.output_dir),
            saved=saved,
            global_step=result.global_step,
            train_runtime=result.metrics.get("train_runtime"),
            train_loss=result.training_loss,
            final_loss=log_callback.last_loss,
        )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        validate_args(args)
        train(args)
    except InputError as exc:
        emit("error", message=str(exc))
        return 1
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        emit("error", message=f"{type(exc).__name__}: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    _claim_stdout()
    sys.exit(main())
