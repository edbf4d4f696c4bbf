"""Model folders under ARGUS_MODEL_DIR and the CURRENT pointer; plain files, no torch, no pickle."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from argus.domain.forecast import ModelInfo, ModelLoadError

MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"
CURRENT = "CURRENT"
FORMAT = "argus-tft/1"
#: A model name is one plain folder name: no separators, no "..", nothing hidden.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def new_model_name(now: datetime | None = None) -> str:
    """Return ``tft_YYYYMMDD_HHMMSS`` for ``now`` (UTC)."""
    return (now or datetime.now(UTC)).strftime("tft_%Y%m%d_%H%M%S")


def sha256_of(path: Path) -> str:
    """Return the hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class DirectoryModelRegistry:
    """Models as folders ``<root>/<name>/{manifest.json, weights.safetensors}``; ``<root>/CURRENT`` names one."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path_for(self, name: str) -> Path:
        """Return the folder of model ``name``; raise ModelLoadError for anything outside the root."""
        if not isinstance(name, str) or not NAME_RE.match(name) or ".." in name:
            raise ModelLoadError(f"Invalid model name: {name!r}")
        root = self.root.resolve()
        path = (self.root / name).resolve()
        if path.parent != root or (self.root / name).is_symlink():
            raise ModelLoadError(f"Model {name!r} is not a folder inside the model directory")
        return path

    def verified_files(self, name: str) -> tuple[dict, Path]:
        """Return (manifest, weights path) after checking format, file kinds and the weights' SHA-256."""
        folder = self.path_for(name)
        manifest_path, weights_path = folder / MANIFEST, folder / WEIGHTS
        for path in (manifest_path, weights_path):
            if path.is_symlink() or not path.is_file():
                raise ModelLoadError(f"Model {name!r} has no regular file {path.name}")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as ex:
            raise ModelLoadError(f"Model {name!r} has an unreadable manifest: {ex}") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ModelLoadError(f"Model {name!r} is not an {FORMAT} model")
        if manifest.get("weights_sha256") != sha256_of(weights_path):
            raise ModelLoadError(f"Model {name!r}: weights do not match the manifest checksum (tampered?)")
        return manifest, weights_path

    def info(self, name: str) -> ModelInfo:
        manifest, _ = self.verified_files(name)
        return ModelInfo(name, str(manifest.get("created_at", "")), str(manifest.get("kind", "tft")),
                         manifest, is_current=self.current() == name)

    def list(self) -> list[ModelInfo]:
        if not self.root.is_dir():
            return []
        current = self.current()
        out = []
        for child in self.root.iterdir():
            if not child.is_dir() or not NAME_RE.match(child.name):
                continue
            try:
                manifest, _ = self.verified_files(child.name)
            except ModelLoadError:
                continue
            out.append(ModelInfo(child.name, str(manifest.get("created_at", "")), str(manifest.get("kind", "tft")),
                                 manifest, is_current=child.name == current))
        return sorted(out, key=lambda m: (m.created_at, m.name), reverse=True)

    def current(self) -> str | None:
        try:
            name = (self.root / CURRENT).read_text(encoding="utf-8").strip()
        except OSError:
            return None
        return name if NAME_RE.match(name) else None

    def set_current(self, name: str) -> None:
        self.verified_files(name)
        self._write_atomically(self.root / CURRENT, name + "\n")

    @staticmethod
    def _write_atomically(path: Path, text: str) -> None:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
