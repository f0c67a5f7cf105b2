"""Build the tiny test model fully offline: a Llama-architecture model that always answers one known text.

    python servers/onnx/tools/build_tiny_model.py                  # rebuild servers/onnx/tests_model/tiny-llama
    python servers/onnx/tools/build_tiny_model.py --output DIR     # build elsewhere (the rebuild test does)
    python servers/onnx/tools/build_tiny_model.py --hf-only --output DIR   # only the Hugging Face folder

Needs the build tools (torch==2.13.0, transformers, onnx-ir, tokenizers) beside onnxruntime-genai; nothing
is downloaded. Steps:

1. train a byte-level BPE tokenizer on a few sentences (with chat special tokens and a chat template);
2. make a Llama model (hidden 64, 2 layers) whose weights are set by hand, not trained: the attention and
   MLP outputs are zero (their inputs are seeded random, so the whole graph still runs), so the hidden state
   is the current token's embedding, and the LM head maps each token to a fixed successor with a margin of
   about 80 logits. Any token that is not part of ANSWER is followed by ANSWER's first token, each ANSWER
   token by the next one, and the last one by the end-of-sequence token. Whatever the prompt, greedy or
   sampled (temperature <= 2), the model answers ANSWER and stops;
3. save it as a Hugging Face folder and convert it with onnxruntime-genai's model builder (`-i DIR`,
   fp32, cpu);
4. copy the result to the output folder and write MANIFEST.sha256 (sha256 and name of every file).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ANSWER = "Hello! I am a tiny test model."
CONTEXT_LENGTH = 256
HIDDEN = 64
MARGIN = 10.0  # weight on the one-hot dimension; times sqrt(hidden size) after RMSNorm: 80 logits at 64

SPECIAL_TOKENS = ["<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
BOS, EOS = "<s>", "</s>"
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)
CORPUS = [
    ANSWER,
    "Hello! I am a tiny test model.",
    "The tiny model answers every question with the same sentence.",
    "Small language models run on Kubernetes with ONNX Runtime.",
    "A server streams tokens to the client and counts them for metrics.",
    "What is the capital of France? Paris is the capital of France.",
    "Tell me a story about a robot who learns to cook.",
    "hello world, this is a test of the tokenizer.",
]

HERE = Path(__file__).resolve().parent
DEFAULT_OUTPUT = HERE.parent / "tests_model" / "tiny-llama"
MANIFEST = "MANIFEST.sha256"


def train_tokenizer() -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=384,
        min_frequency=1,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # Repeating the answer makes its words single tokens.
    tokenizer.train_from_iterator(CORPUS + [ANSWER] * 20, trainer=trainer)
    return tokenizer


def write_hf_folder(out: Path, hidden: int = HIDDEN, layers: int = 2) -> None:
    """The Hugging Face folder: tokenizer files, config.json and model.safetensors."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer()
    tokenizer.save(str(out / "tokenizer.json"))
    vocab = tokenizer.get_vocab()
    bos_id, eos_id = vocab[BOS], vocab[EOS]
    answer_ids: list[int] = tokenizer.encode(ANSWER).ids
    if len(set(answer_ids)) != len(answer_ids) or len(answer_ids) > hidden - 2:
        raise SystemExit(f"the answer must be distinct tokens (fewer than {hidden - 2}): {answer_ids}")
    (out / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "bos_token": BOS,
                "eos_token": EOS,
                "add_bos_token": False,
                "add_eos_token": False,
                "clean_up_tokenization_spaces": False,
                "model_max_length": CONTEXT_LENGTH,
                "chat_template": CHAT_TEMPLATE,
            },
            indent=2,
        )
        + "\n"
    )
    (out / "special_tokens_map.json").write_text(json.dumps({"bos_token": BOS, "eos_token": EOS}, indent=2) + "\n")

    config = LlamaConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=CONTEXT_LENGTH,
        rms_norm_eps=1e-6,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        pad_token_id=eos_id,
        tie_word_embeddings=False,
        torch_dtype="float32",
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
            layer.input_layernorm.weight.fill_(1.0)
            layer.post_attention_layernorm.weight.fill_(1.0)
        model.model.norm.weight.fill_(1.0)
        # One dimension per ANSWER token; every other token shares the last dimension.
        other = hidden - 1
        embed = model.model.embed_tokens.weight
        embed.zero_()
        embed[:, other] = 1.0
        for dim, token in enumerate(answer_ids):
            embed[token].zero_()
            embed[token, dim] = 1.0
        head = model.lm_head.weight
        head.zero_()
        head[answer_ids[0], other] = MARGIN
        successors = [*answer_ids[1:], eos_id]
        for dim, successor in enumerate(successors):
            head[successor, dim] = MARGIN
    model.save_pretrained(str(out), safe_serialization=True)
    (out / "answer.json").write_text(json.dumps({"answer": ANSWER, "answer_token_ids": answer_ids}, indent=2) + "\n")


def convert(hf_dir: Path, out: Path, precision: str = "fp32", provider: str = "cpu") -> None:
    """Run onnxruntime-genai's model builder on a local folder (no hub)."""
    with tempfile.TemporaryDirectory(prefix="ortgenai-cache-") as cache:
        # The builder stamps the ONNX file with `git rev-parse HEAD` run near its install folder, which finds
        # whatever repository encloses the virtualenv; with no repository it uses the wheel's own commit.
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "GIT_DIR": os.devnull}
        command = [
            sys.executable, "-m", "onnxruntime_genai.models.builder",
            "-i", str(hf_dir), "-o", str(out), "-p", precision, "-e", provider, "-c", cache,
        ]  # fmt: skip
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_manifest(folder: Path) -> None:
    lines = [f"{sha256(p)}  {p.name}" for p in sorted(folder.iterdir()) if p.is_file() and p.name != MANIFEST]
    (folder / MANIFEST).write_text("\n".join(lines) + "\n")


def build(output: Path, hidden: int = HIDDEN, layers: int = 2) -> None:
    with tempfile.TemporaryDirectory(prefix="tiny-llama-") as work:
        hf_dir = Path(work) / "hf"
        onnx_dir = Path(work) / "onnx"
        write_hf_folder(hf_dir, hidden, layers)
        convert(hf_dir, onnx_dir)
        shutil.copy(hf_dir / "answer.json", onnx_dir / "answer.json")
        if output.exists():
            shutil.rmtree(output)
        shutil.copytree(onnx_dir, output)
    write_manifest(output)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="folder to write (replaced)")
    parser.add_argument("--hf-only", action="store_true", help="write only the Hugging Face folder")
    parser.add_argument("--hidden-size", type=int, default=HIDDEN, help="bigger models for the bench only")
    parser.add_argument("--layers", type=int, default=2, help="bigger models for the bench only")
    args = parser.parse_args()
    if args.hf_only:
        write_hf_folder(args.output, args.hidden_size, args.layers)
    else:
        build(args.output, args.hidden_size, args.layers)
    print(args.output)


if __name__ == "__main__":
    main()
