"""Pack a model folder into an OCI image layout that a Kubernetes image volume mounts (``slm-deploy pack-weights``).

The image is an ordinary one (an OCI image manifest, an image config and tar layers), because that is what the
container runtimes mount: containerd and CRI-O both mount an image's layers as the volume's file system
(kubernetes.io/docs/tasks/configure-pod-container/image-volumes). The folder's files sit at the image's root, so the
server reads them at the mount path (``/weights``).

- **Uncompressed layers** (``application/vnd.oci.image.layer.v1.tar``): safetensors do not compress, and
  decompressing is what a node spends its pull time on for such images; the registry stores the same bytes either way.
- **One layer per large file**, the small ones (config, tokenizer) together: a node fetches layers in parallel,
  and a re-pack that changes one shard reuses every other layer already in the registry or on the node.
- **Reproducible**: entries sorted, owner 0:0, mode 0444 (0555 for directories), time 0; the same folder gives
  the same digest, which the prod stack pins.

The layout (``oci-layout``, ``index.json``, ``blobs/sha256/…``; github.com/opencontainers/image-spec,
``image-layout.md``) is pushed as it is by ORAS (``oras cp --from-oci-layout``) or skopeo (``skopeo copy oci:…``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar"
REF_NAME = "org.opencontainers.image.ref.name"
#: Files at least this large get a layer of their own (weight shards); smaller ones share one.
OWN_LAYER_BYTES = 16 * 2**20
#: The image's time (config ``created``), fixed so the digest depends only on the files.
EPOCH = "1970-01-01T00:00:00Z"
_CHUNK = 2**20


class PackError(ValueError):
    """The folder cannot be packed (missing, empty, or a file that leaves it); one line for the user."""


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int

    def as_json(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass(frozen=True)
class PackedWeights:
    """What was written: the manifest's digest (what a stack pins), its tag in the layout, and the layers."""

    layout: Path
    tag: str
    manifest: Descriptor
    layers: tuple[Descriptor, ...]
    files: int
    bytes: int


class _Hashing(io.RawIOBase):
    """A write-only file that hashes and counts what it passes on."""

    def __init__(self, sink: IO[bytes]) -> None:
        self.sink, self.sha, self.size = sink, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.sha.update(view)
        self.sink.write(view)
        self.size += len(view)
        return len(view)


def _files(folder: Path) -> list[tuple[PurePosixPath, Path]]:
    """Every regular file below ``folder`` (symlinks followed, as a Hub snapshot has them), by path in the image."""
    found: list[tuple[PurePosixPath, Path]] = []
    root = folder.resolve()
    for directory, subdirectories, names in os.walk(folder, followlinks=False):
        subdirectories.sort()
        for name in sorted(names):
            path = Path(directory) / name
            target = path.resolve()
            if not target.is_file():
                raise PackError(f"{path} is not a regular file (or a link to one)")
            if path.is_symlink() and not (target.is_relative_to(root) or _in_hub_cache(path, target)):
                raise PackError(f"{path} links to {target}, outside the folder")
            found.append((PurePosixPath(path.relative_to(folder).as_posix()), target))
    if not found:
        raise PackError(f"{folder} holds no file to pack")
    return sorted(found)


def _in_hub_cache(link: Path, target: Path) -> bool:
    """A Hub cache snapshot links each file to ``../../blobs/<hash>`` of the same repository folder."""
    return target.parent.name == "blobs" and link.resolve().is_relative_to(target.parent.parent)


def _groups(files: list[tuple[PurePosixPath, Path]]) -> list[list[tuple[PurePosixPath, Path]]]:
    small = [f for f in files if f[1].stat().st_size < OWN_LAYER_BYTES]
    large = [[f] for f in files if f[1].stat().st_size >= OWN_LAYER_BYTES]
    return ([small] if small else []) + large


def _info(name: str, kind: bytes, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.mtime = kind, size, 0
    info.mode = 0o555 if kind == tarfile.DIRTYPE else 0o444
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _parents(path: PurePosixPath) -> Iterator[str]:
    for parent in reversed(path.parents[:-1]):
        yield parent.as_posix()


def _write_layer(blobs: Path, group: list[tuple[PurePosixPath, Path]]) -> Descriptor:
    partial = blobs / ".layer.partial"
    with partial.open("wb") as sink:
        hashing = _Hashing(sink)
        with tarfile.open(fileobj=hashing, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            written: set[str] = set()
            for name, source in group:
                for parent in _parents(name):
                    if parent not in written:
                        tar.addfile(_info(parent, tarfile.DIRTYPE))
                        written.add(parent)
                with source.open("rb") as handle:
                    tar.addfile(_info(name.as_posix(), tarfile.REGTYPE, source.stat().st_size), handle)
    digest = hashing.sha.hexdigest()
    partial.replace(blobs / digest)
    return Descriptor(LAYER_TYPE, f"sha256:{digest}", hashing.size)


def _write_json(blobs: Path, media_type: str, document: dict[str, Any]) -> Descriptor:
    data = json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
    digest = hashlib.sha256(data).hexdigest()
    (blobs / digest).write_bytes(data)
    return Descriptor(media_type, f"sha256:{digest}", len(data))


def pack_weights(folder: Path, layout: Path, tag: str, architecture: str = "amd64") -> PackedWeights:
    """Write ``folder`` as the image ``tag`` of the OCI layout ``layout`` (created, or added to)."""
    if not folder.is_dir():
        raise PackError(f"{folder} is not a folder")
    files = _files(folder)
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    layers = tuple(_write_layer(blobs, group) for group in _groups(files))
    config = _write_json(
        blobs,
        CONFIG_TYPE,
        {
            "architecture": architecture,
            "os": "linux",
            "created": EPOCH,
            "config": {},
            # Uncompressed layers: each layer's diff id is its digest.
            "rootfs": {"type": "layers", "diff_ids": [layer.digest for layer in layers]},
        },
    )
    manifest = _write_json(
        blobs,
        MANIFEST_TYPE,
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": config.as_json(),
            "layers": [layer.as_json() for layer in layers],
        },
    )
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}', encoding="utf-8")
    index_path = layout / "index.json"
    index: dict[str, Any] = (
        json.loads(index_path.read_text(encoding="utf-8")) if index_path.exists() else {"schemaVersion": 2}
    )
    others = [m for m in index.get("manifests", []) if m.get("annotations", {}).get(REF_NAME) != tag]
    index["manifests"] = [*others, {**manifest.as_json(), "annotations": {REF_NAME: tag}}]
    index_path.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    total = sum(source.stat().st_size for _, source in files)
    return PackedWeights(layout, tag, manifest, layers, len(files), total)
