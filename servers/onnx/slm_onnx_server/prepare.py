"""Convert a Hugging Face model folder or a GGUF file into the ONNX Runtime GenAI format, idempotently.

    python -m slm_onnx_server.prepare --source DIR|FILE.gguf --output DIR \\
        --precision auto|int4|int8|fp16|fp32 --execution-provider cpu|cuda

- OUTPUT already holds a converted model (genai_config.json and every ONNX file it names): validated, skipped.
- SOURCE is itself already in the ONNX Runtime GenAI format (e.g. a Foundry Local build): validated, and
  OUTPUT is left alone (serve SOURCE directly); nothing is converted.
- SOURCE is a GGUF file: dequantised to an FP32 Hugging Face folder first (prepare_gguf.py: the builder's own
  GGUF loader reads only F16/F32 tensors), then converted as a folder.
- Otherwise the onnxruntime-genai model builder converts SOURCE (a local folder; never a hub download) into
  a temporary folder beside OUTPUT, which is then renamed into place, so a crash never leaves a half model
  that the next run would take for a finished one.

Precision `auto` (the default) is INT4 with llama.cpp's mixed strategy (see `choose_precision`); `int8` and
the others are as the builder makes them.

Exit status: 0 converted or already prepared, 1 the conversion or validation failed, 2 bad arguments.
The builder needs torch, transformers and onnx-ir installed beside onnxruntime-genai (the conversion image);
a GGUF source needs gguf and accelerate too (all in requirements-build.txt).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PRECISIONS = ("auto", "int4", "int8", "fp16", "fp32")
PROVIDERS = ("cpu", "cuda")


class PrepareError(Exception):
    """The model cannot be prepared (exit status 1)."""


def model_files(folder: Path) -> list[Path]:
    """The files a converted model needs, per its genai_config.json; raises PrepareError when one is missing."""
    config_path = folder / "genai_config.json"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except OSError as error:
        raise PrepareError(f"{config_path}: {error.strerror}") from None
    except ValueError as error:
        raise PrepareError(f"{config_path}: not valid JSON ({error})") from None
    model = config.get("model") if isinstance(config, dict) else None
    if not isinstance(model, dict):
        raise PrepareError(f"{config_path}: no 'model' section")
    names: list[str] = []
    for section in model.values():
        if isinstance(section, dict) and isinstance(section.get("filename"), str):
            names.append(section["filename"])
    if not names:
        raise PrepareError(f"{config_path}: names no ONNX model file")
    files = [config_path, *(folder / name for name in names)]
    missing = [str(p.name) for p in files if not p.is_file()]
    if missing:
        raise PrepareError(f"{folder}: missing {', '.join(missing)}")
    if not any((folder / name).is_file() for name in ("tokenizer.json", "tokenizer.model", "tokenizer_config.json")):
        raise PrepareError(f"{folder}: no tokenizer files")
    return files


def is_prepared(folder: Path) -> bool:
    try:
        model_files(folder)
    except PrepareError:
        return False
    return True


#: The builder's INT4 method: k-quant with INT8 for the LM head and llama.cpp's "mixed" layers.
INT4_ALGORITHM = "k_quant_mixed"
#: MatMulNBits' compute type for INT4/INT8 weights on CPU: 4 = INT8 (see build).
INT4_ACCURACY_LEVEL = 4


def is_gguf(source: Path) -> bool:
    return source.suffix.lower() == ".gguf"


def choose_precision(source: Path, requested: str) -> str:
    """The builder's precision: as requested; `auto` is INT4 (with the mixed strategy of `build`) for any source.

    INT4 reads a quarter of FP16's weights per token, and small models on CPU are bound by memory bandwidth.
    Plain INT4 (round-to-nearest everywhere) of an already-quantised GGUF adds a second rounding on top of the
    first: SmolLM2-135M's Q4_1 file answered 2 of 5 test prompts right, against 5 of 5 at INT8. INT4 with the
    builder's `k_quant_mixed` (k-quant rounding; INT8 for the LM head and the most sensitive layers, as
    llama.cpp's Q4_K_M mixes) answered 5 of 5 too, at 112 MB instead of 259 MB and about 1.2x INT8's
    tokens/s on 2 cores. So INT4 mixed is the default for every source; `int8` remains a choice.
    """
    return "int4" if requested == "auto" else requested


def convert(source: Path, output: Path, precision: str, provider: str) -> None:
    gguf = is_gguf(source)
    if gguf and not source.is_file():
        raise PrepareError(f"{source}: no such GGUF file")
    if not gguf and not (source / "config.json").is_file():
        raise PrepareError(
            f"{source}: neither an ONNX Runtime GenAI model, a Hugging Face folder (no config.json) nor a GGUF file"
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.partial-", dir=output.parent))
    cache = staging / "cache"
    result = staging / "model"
    try:
        folder = source
        if gguf:
            from .prepare_gguf import GgufError, dequantise

            folder = staging / "dequantised"
            try:
                dequantise(source, folder)
            except GgufError as error:
                raise PrepareError(str(error)) from None
        build(folder, result, cache, precision, provider)
        model_files(result)
        if output.exists():
            if any(output.iterdir()):
                raise PrepareError(f"{output}: exists, is not empty and holds no complete model; remove it")
            output.rmdir()
        result.rename(output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def build(folder: Path, result: Path, cache: Path, precision: str, provider: str) -> None:
    """Run the onnxruntime-genai model builder on a local Hugging Face folder, offline."""
    # The builder stamps the ONNX file with `git rev-parse HEAD` run near its install folder, which finds
    # whatever repository encloses the virtualenv; with no repository it uses the wheel's own commit.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "GIT_DIR": os.devnull}
    command = [
        sys.executable, "-m", "onnxruntime_genai.models.builder",
        "-i", str(folder), "-o", str(result), "-p", precision, "-e", provider, "-c", str(cache),
    ]  # fmt: skip
    if precision == "int4" and provider == "cpu":
        # k-quant INT4 body, INT8 LM head and sensitive layers (see choose_precision); CPU kernels run both.
        # accuracy_level 4: MatMulNBits quantises its activations to INT8 and computes in INT8. It is the
        # builder's CPU default today; pinned because level 1 (FP32 compute) made SmolLM2 ten times slower
        # (7-10 against 68-118 tokens/s at c=4 on 2 cores, raw og.Engine, one run).
        command += ["--extra_options", f"algo_config={INT4_ALGORITHM}", f"accuracy_level={INT4_ACCURACY_LEVEL}"]
    completed = subprocess.run(command, env=env, check=False)
    if completed.returncode != 0:
        raise PrepareError(f"the model builder failed with exit status {completed.returncode}")


def prepare(source: Path, output: Path, precision: str, provider: str) -> str:
    """Returns what was done: 'already-prepared', 'source-is-onnx' or 'converted'."""
    if is_prepared(output):
        return "already-prepared"
    if source.is_dir() and (source / "genai_config.json").is_file():
        model_files(source)
        return "source-is-onnx"
    convert(source, output, choose_precision(source, precision), provider)
    return "converted"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m slm_onnx_server.prepare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--source", type=Path, required=True, help="Hugging Face folder, GGUF file (or an ORT GenAI model)"
    )
    parser.add_argument("--output", type=Path, required=True, help="where the converted model goes")
    parser.add_argument(
        "--precision", choices=PRECISIONS, default="auto", help="auto: INT4, mixed with INT8 (k_quant_mixed)"
    )
    parser.add_argument("--execution-provider", choices=PROVIDERS, default="cpu")
    args = parser.parse_args(argv)
    try:
        outcome = prepare(args.source, args.output, args.precision, args.execution_provider)
    except PrepareError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    target = args.source if outcome == "source-is-onnx" else args.output
    print(json.dumps({"outcome": outcome, "model": str(target)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
