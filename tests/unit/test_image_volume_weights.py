"""Weights in an image volume (docs/image-volume-weights.md): the stack key, the render, the pack's rules, packing.

The packed layout is read back by real OCI tools (umoci unpacks it as a runtime would, skopeo reads its manifest),
and pushed to a real registry (the distribution registry, Debian's docker-registry) and read back by digest.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from infra.cli import app
from infra.weights.pack import LAYER_TYPE, OWN_LAYER_BYTES, pack_weights
from tests.conftest import ROOT
from tests.unit.test_config_errors import stack_text

DIGEST = "sha256:" + "ab" * 32
IMAGE_MODEL = f"""
    - name: phi
      engine: vllm
      modelId: microsoft/Phi-4-mini-instruct
      gpu: {{count: 1}}
      replicas: 2
      weights:
        source: imageVolume
        image: {{repository: myacr.azurecr.io/models/phi-4-mini, tag: "2026.12.07", digest: "{DIGEST}"}}
"""

ERRORS = {
    "no-image": (
        "      weights: {source: imageVolume}\n",
        "slm-deploy:models[0].weights: source imageVolume mounts an image: set image",
    ),
    "image-with-cache-source": (
        "      weights: {image: {repository: a.azurecr.io/m, tag: '1'}}\n",
        "slm-deploy:models[0].weights: image is set, but source is cache",
    ),
    "pull-never": (
        "      weights: {source: imageVolume, image: {repository: a.azurecr.io/m, tag: '1'}, pullPolicy: Never}\n",
        "slm-deploy:models[0].weights.pullPolicy:",
    ),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_a_bad_weights_key_is_one_line(case: str, stack_dir: Path) -> None:
    extra, expected = ERRORS[case]
    model = "\n    - name: phi\n      engine: vllm\n      modelId: org/m\n      gpu: {count: 1}\n" + extra
    _expect_error(stack_dir, stack_text(model), expected)


def test_an_image_volume_is_for_vllm_and_has_no_cache(stack_dir: Path) -> None:
    ollama = "\n    - name: chat\n      engine: ollama\n      modelId: qwen3:0.6b\n"
    _expect_error(
        stack_dir,
        stack_text(ollama + "      weights: {source: imageVolume, image: {repository: a.azurecr.io/m, tag: '1'}}\n"),
        "slm-deploy:models[0]: weights.source imageVolume is served by engine 'vllm'",
    )
    _expect_error(
        stack_dir,
        stack_text(IMAGE_MODEL + "      cache: {size: 10Gi}\n"),
        "slm-deploy:models[0]: cache is set, but weights.source is imageVolume",
    )


def _expect_error(stack_dir: Path, text: str, expected: str) -> None:
    (stack_dir / "stacks" / "Pulumi.bad.yaml").write_text(text)
    result = CliRunner().invoke(app, ["validate", "--stack", "bad", "--root", str(stack_dir)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Pulumi.bad.yaml: " in lines[0] and expected in lines[0], result.stderr
    assert "Traceback" not in result.output


def _render(stack_dir: Path, text: str) -> list[dict[str, Any]]:
    (stack_dir / "stacks" / "Pulumi.iv.yaml").write_text(text)
    out = stack_dir / "out"
    result = CliRunner().invoke(app, ["render", "--stack", "iv", "--root", str(stack_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return [d for p in sorted(out.rglob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d]


def test_the_server_mounts_the_image_read_only_and_loads_it_offline(stack_dir: Path) -> None:
    network = "  slm-deploy:network:\n    modelDownload: allow\n    downloadCidrs: [0.0.0.0/0]\n"
    documents = _render(stack_dir, stack_text(IMAGE_MODEL, extra=network))
    kinds = {d["kind"] for d in documents}
    assert "PersistentVolumeClaim" not in kinds  # nothing to keep
    # The kubelet pulls the image: no pod of the model needs download egress although the stack allows it.
    assert not [d for d in documents if "download" in d["metadata"].get("name", "")]
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert {
        "name": "weights",
        "image": {"reference": f"myacr.azurecr.io/models/phi-4-mini:2026.12.07@{DIGEST}", "pullPolicy": "IfNotPresent"},
    } in pod["volumes"]
    container = pod["containers"][0]
    assert {"name": "weights", "mountPath": "/weights", "readOnly": True} in container["volumeMounts"]
    assert container["args"][0] == "/weights"
    assert {"name": "HF_HUB_OFFLINE", "value": "1"} in container["env"]
    # Two replicas without a shared claim: a rolling update needs no ReadWriteMany volume.
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"


def test_prod_serves_a_model_from_a_digest_pinned_image_the_level_admits() -> None:
    from infra.config.loader import load_stack_file
    from policies.rules.allowed_image_registries import repository_allowed

    config = load_stack_file(ROOT / "stacks" / "Pulumi.prod.yaml")
    pinned = [m for m in config.models if m.weights.image_volume]
    assert pinned and all(m.weights.image and m.weights.image.digest for m in pinned)
    level = json.loads((ROOT / "policies" / "config" / "prod.json").read_text())
    allowed = tuple(level["allowed-image-registries"]["allowedRepositories"])
    for model in pinned:
        assert model.weights.image is not None
        assert repository_allowed(model.weights.image.repository, allowed)


# -- packing -------------------------------------------------------------------------------------------------------


def _model_folder(root: Path) -> Path:
    folder = root / "model"
    (folder / "tokenizer").mkdir(parents=True)
    (folder / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
    (folder / "tokenizer" / "tokenizer.json").write_text("{}")
    (folder / "model-00001-of-00002.safetensors").write_bytes(os.urandom(OWN_LAYER_BYTES + 1))
    (folder / "model-00002-of-00002.safetensors").write_bytes(os.urandom(OWN_LAYER_BYTES))
    return folder


def test_packing_is_reproducible_one_layer_per_shard(tmp_path: Path) -> None:
    folder = _model_folder(tmp_path)
    first = pack_weights(folder, tmp_path / "a", "1")
    second = pack_weights(folder, tmp_path / "b", "1")
    assert first.manifest == second.manifest
    assert [layer.media_type for layer in first.layers] == [LAYER_TYPE] * 3  # small files, then each shard
    index = json.loads((tmp_path / "a" / "index.json").read_text())
    assert index["manifests"][0]["digest"] == first.manifest.digest
    assert index["manifests"][0]["annotations"] == {"org.opencontainers.image.ref.name": "1"}


def test_a_link_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    folder = _model_folder(tmp_path)
    (tmp_path / "secret").write_text("x")
    (folder / "leak").symlink_to(tmp_path / "secret")
    result = CliRunner().invoke(
        app, ["pack-weights", str(folder), "--layout", str(tmp_path / "l"), "--tag", "1", "--repository", "a.io/m"]
    )
    assert result.exit_code == 2 and "links to" in result.stderr and "outside the folder" in result.stderr


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is not installed (scripts/run.sh installs it with apt-get)"
    return path


def test_a_runtime_unpacks_the_files_as_they_were(tmp_path: Path) -> None:
    folder = _model_folder(tmp_path)
    result = CliRunner().invoke(
        app,
        [
            "pack-weights",
            str(folder),
            "--layout",
            str(tmp_path / "layout"),
            "--tag",
            "2026.12.07",
            "--repository",
            "myacr.azurecr.io/models/m",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["weights"]["image"]["digest"] == report["digest"]
    assert report["push"][0] == (
        f"oras cp --from-oci-layout {tmp_path / 'layout'}@{report['digest']} myacr.azurecr.io/models/m:2026.12.07"
    )
    inspect = subprocess.run(
        [_tool("skopeo"), "inspect", f"oci:{tmp_path / 'layout'}:2026.12.07"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(inspect.stdout)["Digest"] == report["digest"]
    bundle = tmp_path / "bundle"
    subprocess.run(
        [_tool("umoci"), "unpack", "--rootless", "--image", f"{tmp_path / 'layout'}:2026.12.07", str(bundle)],
        check=True,
        capture_output=True,
    )
    unpacked = sorted(p.relative_to(bundle / "rootfs") for p in (bundle / "rootfs").rglob("*") if p.is_file())
    assert unpacked == sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file())
    for path in unpacked:
        assert (bundle / "rootfs" / path).read_bytes() == (folder / path).read_bytes()
        assert (bundle / "rootfs" / path).stat().st_mode & 0o777 == 0o444  # readable by the server's UID


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    """The distribution registry (the one behind most registries, ACR's API included) on a free local port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = tmp_path / "registry.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "version": 0.1,
                "storage": {"filesystem": {"rootdirectory": str(tmp_path / "registry")}},
                "http": {"addr": f"127.0.0.1:{port}"},
                "log": {"level": "error"},
            }
        )
    )
    process = subprocess.Popen(
        [_tool("docker-registry"), "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and process.poll() is None, "the registry did not start"
                time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_pushed_image_keeps_the_digest_the_stack_pins(tmp_path: Path, registry: str) -> None:
    folder = _model_folder(tmp_path)
    packed = pack_weights(folder, tmp_path / "layout", "2026.12.07")
    target = f"docker://{registry}/models/m:2026.12.07"
    subprocess.run(
        [
            _tool("skopeo"),
            "copy",
            "--dest-tls-verify=false",
            "--preserve-digests",
            f"oci:{tmp_path / 'layout'}:2026.12.07",
            target,
        ],
        check=True,
        capture_output=True,
    )
    pulled = subprocess.run(
        [_tool("skopeo"), "inspect", "--tls-verify=false", f"docker://{registry}/models/m@{packed.manifest.digest}"],
        check=True,
        capture_output=True,
        text=True,
    )
    assert json.loads(pulled.stdout)["Layers"] == [layer.digest for layer in packed.layers]
