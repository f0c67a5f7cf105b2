"""``slm-deploy pack-weights``: a model folder → an OCI image layout, and how to push and pin it."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import typer

from infra.config.k8s_names import IMAGE_REPOSITORY, IMAGE_TAG, refuse
from infra.weights.pack import PackedWeights, PackError, pack_weights


def push_commands(packed: PackedWeights, repository: str) -> list[str]:
    """Ways to push the packed image, each copying exactly the manifest packed (by digest) to ``repository:tag``."""
    layout = shlex.quote(str(packed.layout))
    target = shlex.quote(f"{repository}:{packed.tag}")
    return [
        f"oras cp --from-oci-layout {layout}@{packed.manifest.digest} {target}",
        f"skopeo copy --preserve-digests oci:{layout}:{shlex.quote(packed.tag)} docker://{target}",
    ]


def stack_snippet(packed: PackedWeights, repository: str) -> dict[str, object]:
    """The model's ``weights`` key that mounts the packed image (camelCase, as in a stack file)."""
    image = {"repository": repository, "tag": packed.tag, "digest": packed.manifest.digest}
    return {"source": "imageVolume", "image": image, "pullPolicy": "IfNotPresent"}


def pack_weights_command(folder: Path, layout: Path, tag: str, repository: str, output_format: str) -> int:
    try:
        refuse(IMAGE_TAG, tag, "--tag")
        refuse(IMAGE_REPOSITORY, repository, "--repository")
        packed = pack_weights(folder, layout, tag)
    except (PackError, ValueError) as error:
        typer.echo(f"error: {error}", err=True)
        return 2
    snippet = stack_snippet(packed, repository)
    if output_format == "json":
        document = {
            "layout": str(packed.layout),
            "tag": packed.tag,
            "digest": packed.manifest.digest,
            "files": packed.files,
            "bytes": packed.bytes,
            "layers": [layer.as_json() for layer in packed.layers],
            "push": push_commands(packed, repository),
            "weights": snippet,
        }
        typer.echo(json.dumps(document, indent=2))
        return 0
    typer.echo(
        f"packed {packed.files} file(s), {packed.bytes / 2**20:.1f} MiB, in {len(packed.layers)} layer(s): "
        f"{packed.layout}:{packed.tag}"
    )
    typer.echo(f"digest: {packed.manifest.digest}")
    typer.echo("push it (after `az acr login`), with either of:")
    for command in push_commands(packed, repository):
        typer.echo(f"  {command}")
    typer.echo("then mount it from the model's entry in the stack file:")
    typer.echo(f"  weights: {json.dumps(snippet)}")
    return 0
