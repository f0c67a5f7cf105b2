"""Fetch a GGUF file into the model cache for the preparation Job (stack key `onnx.prepare.gguf`), once.

    python -m slm_onnx_server.fetch_gguf --file NAME --dir DIR --skip-if DIR \\
        (--repo REPO [--revision REV] | --url URL --sha256 HEX)

- DIR/NAME already there, or the converted model (--skip-if, a folder with genai_config.json) already there:
  nothing is fetched.
- --repo: the Hugging Face Hub's client downloads NAME at REV (a token comes from HF_TOKEN or HF_TOKEN_PATH,
  which the Job sets for gated repositories and which the client reads itself).
- --url: an HTTPS download, checked against --sha256 before the file takes its name.

Either way the file is written under a temporary name and renamed into place, so a crash never leaves a
partial file the next run would take for a finished one. Exit status 0 fetched or already there, 1 failed.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import urllib.request
from pathlib import Path

CHUNK = 1 << 20


class FetchError(Exception):
    """The file cannot be fetched (exit status 1)."""


def from_hub(repo: str, revision: str, name: str, partial: Path) -> None:
    import huggingface_hub as hub  # in the preparation image (a dependency of transformers)

    staging = partial.with_name(partial.name + ".hub")
    try:
        downloaded = Path(hub.hf_hub_download(repo, name, revision=revision, local_dir=staging))
        downloaded.rename(partial)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def from_url(url: str, sha256: str, partial: Path) -> None:
    if not url.startswith("https://"):
        raise FetchError("only https:// URLs are fetched")
    digest = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=60) as response, partial.open("wb") as out:
        while chunk := response.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
    if digest.hexdigest() != sha256:
        partial.unlink()
        raise FetchError(f"the download of {url} does not match its sha256")


def fetch(args: argparse.Namespace) -> str:
    """Returns what was done: 'already-prepared', 'already-fetched' or 'fetched'."""
    if args.skip_if is not None and (args.skip_if / "genai_config.json").is_file():
        return "already-prepared"
    target = args.dir / args.file
    if target.is_file():
        return "already-fetched"
    args.dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    try:
        if args.repo is not None:
            from_hub(args.repo, args.revision, args.file, partial)
        else:
            from_url(args.url, args.sha256, partial)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise FetchError(f"cannot fetch {args.file}: {error}") from None
    partial.rename(target)
    return "fetched"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m slm_onnx_server.fetch_gguf",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--file", required=True, help="the GGUF file's name")
    parser.add_argument("--dir", type=Path, required=True, help="where it goes")
    parser.add_argument("--skip-if", type=Path, help="the converted model's folder: fetch nothing once it exists")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--repo", help="Hugging Face repository holding the file")
    source.add_argument("--url", help="HTTPS URL of the file (with --sha256)")
    parser.add_argument("--revision", default="main", help="branch, tag or commit of --repo")
    parser.add_argument("--sha256", help="the file's SHA-256 (required with --url)")
    args = parser.parse_args(argv)
    if args.url is not None and not args.sha256:
        parser.error("--url needs --sha256")
    if "/" in args.file or args.file in ("", ".", ".."):
        parser.error("--file is a file name, not a path")
    try:
        outcome = fetch(args)
    except FetchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{outcome}: {args.dir / args.file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
