"""Write and read model folders: safetensors weights + a JSON manifest that fully rebuilds the network."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

import attrs
import torch
from safetensors.torch import load_model as load_weights
from safetensors.torch import save_model as save_weights

from argus.adapters.tft.features import COVARIATES, SCALE_FLOOR, UPPER_BOUND, FeatureSpec
from argus.adapters.tft.network import ArgusTft, build_network
from argus.adapters.tft.registry import FORMAT, MANIFEST, WEIGHTS, DirectoryModelRegistry, sha256_of
from argus.domain.forecast import TARGET_FIELDS, TARGETS, ModelLoadError

LIBRARIES = ("torch", "pytorch-forecasting", "lightning", "numpy", "safetensors")


def library_versions() -> dict[str, str]:
    """Return the versions of the libraries a model depends on."""
    out = {}
    for lib in LIBRARIES:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            out[lib] = "missing"
    return out


def describe_features(spec: FeatureSpec) -> dict[str, object]:
    """Return the manifest's feature section: every input, its transform, and the scaling rule."""
    return {
        "targets": {t: TARGET_FIELDS[t] for t in TARGETS},
        "static_categoricals": ["profile"],
        "static_reals": spec.static_reals,
        "known_reals": spec.known_reals,
        "unknown_reals": spec.unknown_reals,
        "covariates": {name: {"field": field, "transform": kind} for name, field, kind in COVARIATES},
        "x_reals": spec.x_reals,
        "scaling": {
            "method": "per window and target: (y - last encoder value) / max(std of the encoder window, floor)",
            "floors": SCALE_FLOOR,
            "upper_bounds": UPPER_BOUND,
        },
        "excluded": ["status (derived from the metrics: would leak the answer)", "uptime_days"],
    }


def save_model(model_dir: Path, name: str, net: ArgusTft, spec: FeatureSpec,
               network: Mapping[str, object], extra: Mapping[str, object]) -> Path:
    """Write ``<model_dir>/<name>/`` atomically (a temp folder renamed into place); return its path."""
    registry = DirectoryModelRegistry(model_dir)
    final = registry.path_for(name)
    if final.exists():
        raise FileExistsError(f"model {name} already exists")
    model_dir.mkdir(parents=True, exist_ok=True)
    tmp = model_dir / f".tmp_{name}_{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        save_weights(net.cpu(), str(tmp / WEIGHTS))  # de-duplicates the TFT's shared prescalers
        manifest = {
            "format": FORMAT,
            "kind": "tft",
            "name": name,
            "feature_spec": attrs.asdict(spec),
            "network": dict(network),
            "features": describe_features(spec),
            "libraries": library_versions(),
            "parameters": int(sum(p.numel() for p in net.parameters())),
            **extra,
            "weights_sha256": sha256_of(tmp / WEIGHTS),
        }
        manifest["size_bytes"] = (tmp / WEIGHTS).stat().st_size
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n", encoding="utf-8")
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def spec_from_manifest(manifest: Mapping[str, object]) -> FeatureSpec:
    """Rebuild the FeatureSpec stored in a manifest."""
    raw = dict(manifest["feature_spec"])  # type: ignore[arg-type]
    raw["profiles"] = tuple(raw["profiles"])
    return FeatureSpec(**raw)


def load_network(registry: DirectoryModelRegistry, name: str) -> tuple[ArgusTft, FeatureSpec, dict]:
    """Rebuild a verified model from its manifest and load its weights (safetensors: nothing unpickled)."""
    manifest, weights_path = registry.verified_files(name)
    try:
        spec = spec_from_manifest(manifest)
        net = build_network(spec, manifest["network"])
        missing, unexpected = load_weights(net, str(weights_path), strict=True)
        if missing or unexpected:
            raise ValueError(f"missing {missing}, unexpected {unexpected}")
    except (KeyError, TypeError, ValueError, RuntimeError) as ex:
        raise ModelLoadError(f"Model {name!r} does not match its manifest: {ex}") from None
    net.eval()
    return net, spec, manifest


def update_manifest(registry: DirectoryModelRegistry, name: str, key: str, value: object) -> None:
    """Set one top-level manifest key (e.g. "evaluation"); the weights' checksum is untouched."""
    manifest, _ = registry.verified_files(name)
    manifest[key] = value
    path = registry.path_for(name) / MANIFEST
    tmp = path.with_name(f".{MANIFEST}.tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def resolve_device(device: str) -> torch.device:
    """Resolve ``auto|cpu|cuda[:n]`` (call inside the worker process, never in a forking parent)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError("ARGUS_DEVICE asks for CUDA but no CUDA device is available")
    return torch.device(device)
