"""Build a tiny random Llama model that FastChat can serve on CPU, fully offline.

Usage: python scripts/build_tiny_model.py OUTDIR

Runs in the *engine* venv (torch, transformers, tokenizers; see scripts/prepare-engine.sh), not in
the platform's venv. No download: the tokenizer is a 1,024-token byte-level BPE trained on a local
text file, the weights are random (fixed seed), ~213k parameters. Output is a normal Hugging Face
model directory: config.json, generation_config.json, model.safetensors, tokenizer.json,
tokenizer_config.json, special_tokens_map.json. The model answers with gibberish, which is all the
integration tests need.

The directory is written to a temporary sibling and renamed at the end, so a present config.json
means a complete model.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

SEED = 0
VOCAB_SIZE = 1024
BOS, EOS, UNK, PAD = "<s>", "</s>", "<unk>", "<pad>"
TRAINING_TEXTS = (
    Path("/usr/share/common-licenses/GPL-3"),
    Path("/usr/share/common-licenses/Apache-2.0"),
    Path("/usr/share/common-licenses/GPL-2"),
)
# Vicuna-style, like FastChat's vicuna_v1.1 conversation template that the tests serve it with.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] + ' ' }}"
    "{% elif message['role'] == 'user' %}{{ 'USER: ' + message['content'] + ' ' }}"
    "{% else %}{{ 'ASSISTANT: ' + message['content'] + eos_token }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)
FALLBACK_TEXT = (
    "USER: Hello, who are you? ASSISTANT: I am a tiny language model used for tests. "
    "The quick brown fox jumps over the lazy dog. 0123456789 !?.,;:'\"()[]{}<>/\\-_+=*&^%$#@~`|\n"
)


def training_lines() -> list[str]:
    texts = [p.read_text(encoding="utf-8", errors="replace") for p in TRAINING_TEXTS if p.is_file()]
    texts.append(FALLBACK_TEXT * 50)  # always enough to reach the vocabulary size on any machine
    return [line for text in texts for line in text.splitlines() if line.strip()]


def build_tokenizer() -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=[UNK, BOS, EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(training_lines(), trainer=trainer)
    bos_id = tok.token_to_id(BOS)
    # Like Llama's tokenizer: prepend <s> to every encoded prompt.
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bos_id)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        pad_token=PAD,
        model_max_length=512,
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_model(tokenizer: PreTrainedTokenizerFast, hidden_size: int = 64, heads: int = 4) -> LlamaForCausalLM:
    torch.manual_seed(SEED)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=2,
        num_attention_heads=heads,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    model.eval()
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path, help="model directory to create (replaced if it exists)")
    # vLLM's CPU attention has kernels for some head sizes only (64 is one, the default 16 is not):
    # scripts/prepare-vllm.sh builds its model with --hidden-size 128 --heads 2
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--heads", type=int, default=4)
    args = parser.parse_args(argv)
    outdir: Path = args.outdir.expanduser().resolve()
    outdir.parent.mkdir(parents=True, exist_ok=True)

    tokenizer = build_tokenizer()
    model = build_model(tokenizer, args.hidden_size, args.heads)
    with tempfile.TemporaryDirectory(prefix=f".{outdir.name}-", dir=outdir.parent) as tmp:
        staging = Path(tmp) / "model"
        tokenizer.save_pretrained(staging)
        model.save_pretrained(staging, safe_serialization=True)
        for path in staging.iterdir():
            path.chmod(0o644)  # safetensors writes 0600; other users (containers) must read the model
        if outdir.exists():
            shutil.rmtree(outdir)
        staging.rename(outdir)

    params = sum(p.numel() for p in model.parameters())
    print(f"tiny model: {outdir} (vocab {len(tokenizer)}, {params} parameters)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
