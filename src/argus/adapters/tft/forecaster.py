"""TftForecaster: one batched (chunked) forward pass over the whole fleet, on CPU or CUDA."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

import numpy as np

from argus.adapters.tft.features import (
    FeatureSpec,
    WindowSlice,
    denormalize,
    encode_windows,
    segments_from_arrays,
)
from argus.adapters.tft.registry import DirectoryModelRegistry
from argus.domain.errors import ModelNotLoadedError
from argus.domain.forecast import TARGETS, Forecast
from argus.domain.metrics import STEP_SECONDS, MetricsWindow


def latest_window(window: MetricsWindow, spec: FeatureSpec, profile_index: int,
                  until_epoch_s: int | None = None) -> WindowSlice | None:
    """Cut the model input from a rolling window: its latest gap-free measured stretch, if long enough.

    None when the server has fewer than ``min_encoder_steps`` recent measured steps, or when its last
    measured step is more than ``max_gap_steps`` before its last record (it is offline now).
    ``until_epoch_s``: cut as if the window ended then (the rows after it are ignored).
    """
    ts = window.timestamps
    end = len(ts) if until_epoch_s is None else int(np.searchsorted(ts, until_epoch_s, side="right"))
    if end == 0:
        return None
    last = int(ts[end - 1])
    start = int(np.searchsorted(ts, last - (spec.max_encoder_steps + spec.max_gap_steps + 2) * STEP_SECONDS,
                                side="right"))
    segments = segments_from_arrays(window.server_name, ts[start:end], window.values[start:end],
                                    window.statuses[start:end], spec.max_gap_steps)
    if not segments:
        return None
    seg = segments[-1]
    if len(seg) < spec.min_encoder_steps or last - int(seg.ts[-1]) > spec.max_gap_steps * STEP_SECONDS:
        return None
    n = min(len(seg), spec.max_encoder_steps)
    return WindowSlice(seg.targets[-n:], seg.covariates[-n:], int(seg.ts[-1]), profile_index)


class TftForecaster:
    """Serves a trained TFT; build it with ``load`` inside the worker process (it may touch CUDA)."""

    def __init__(self, net, spec: FeatureSpec, manifest: Mapping[str, object], name: str,
                 device: str = "cpu", chunk_size: int = 128) -> None:
        self._net = net
        self.spec = spec
        self.manifest = manifest
        self.name = name
        self.device = device
        self.chunk_size = chunk_size
        self.quantiles = tuple(float(q) for q in manifest["network"]["quantiles"])  # type: ignore[index]
        self.min_history_steps = spec.min_encoder_steps
        self.horizon_steps = spec.horizon_steps
        self._feature_names = {
            "encoder": list(net.encoder_variables),
            "decoder": list(net.decoder_variables),
            "static": list(net.static_variables),
        }

    @classmethod
    def load(cls, registry: DirectoryModelRegistry, name: str | None = None, device: str = "auto",
             threads: int = 1, chunk_size: int = 128) -> TftForecaster:
        """Load ``name`` (default: the CURRENT model) from ``registry`` onto ``device``."""
        name = registry.current() if name is None else name
        if name is None:  # before torch is imported: an engine without a model starts in a second, not seven
            raise ModelNotLoadedError("No model is marked CURRENT in the model directory")
        import torch

        from argus.adapters.tft.artifacts import load_network, resolve_device

        torch.set_num_threads(max(1, threads))
        net, spec, manifest = load_network(registry, name)
        target = resolve_device(device)
        return cls(net.to(target), spec, manifest, name, str(target), chunk_size)

    def forecast(self, windows: Sequence[MetricsWindow], profiles: Mapping[str, str],
                 between_chunks: Callable[[], object] | None = None) -> dict[str, Forecast]:
        """Forecast every ready server; see ``argus.ports.forecasting.Forecaster``. ``between_chunks`` is called
        after each chunk of ``chunk_size`` servers but the last (the engine answers requests there)."""
        ready: list[tuple[str, str, WindowSlice]] = []
        for window in windows:
            profile = profiles.get(window.server_name, "generic")
            cut = latest_window(window, self.spec, self.spec.profile_index(profile))
            if cut is not None:
                ready.append((window.server_name, profile, cut))
        out: dict[str, Forecast] = {}
        for start in range(0, len(ready), self.chunk_size):
            if start and between_chunks is not None:
                between_chunks()
            chunk = ready[start : start + self.chunk_size]
            out.update(self._forecast_chunk(chunk))
        return out

    def predict_slices(self, slices: Sequence[WindowSlice]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Return natural-unit quantiles (B, H, 6, Q) and explanation arrays for prepared windows."""
        import torch

        from argus.adapters.tft.network import explanation_arrays, stacked_prediction, to_tensors

        batch = encode_windows(slices, self.spec)
        batch.pop("future_z", None)
        # Without oneDNN: it caches a primitive (with its own copy of the weights, ~0.4 MB here) for every
        # batch shape it meets, and the engine's batches vary from tick to tick (budgeted past origins,
        # explanations), so the cache grew the engine by ~0.7 MB a tick up to its 1,024 entries. Without it the
        # shipped model is at most a few percent slower (measured in docs/model.md).
        with _without_onednn(), torch.inference_mode():
            out = self._net(to_tensors(batch, self.device))
            pred = stacked_prediction(out).float().cpu().numpy()
            explain = explanation_arrays(self._net, out)
        return denormalize(pred, batch["center"], batch["scale"]), explain

    def _forecast_chunk(self, chunk: Sequence[tuple[str, str, WindowSlice]]) -> dict[str, Forecast]:
        values, explain = self.predict_slices([cut for _, _, cut in chunk])
        steps = np.arange(1, self.horizon_steps + 1, dtype=np.int64) * STEP_SECONDS
        out = {}
        for i, (server, profile, cut) in enumerate(chunk):
            length = len(cut.targets)
            enc_ts = cut.last_epoch_s - np.arange(length - 1, -1, -1, dtype=np.int64) * STEP_SECONDS
            out[server] = Forecast(
                server_name=server,
                timestamps=cut.last_epoch_s + steps,
                quantiles=self.quantiles,
                values={t: values[i, :, j, :] for j, t in enumerate(TARGETS)},
                model_name=self.name,
                profile=profile,
                encoder_timestamps=enc_ts,
                encoder_attention=explain["attention"][i, :length],
                encoder_importance=self._named("encoder", explain["encoder_importance"][i]),
                static_importance=self._named("static", explain["static_importance"][i]),
                decoder_importance=self._named("decoder", explain["decoder_importance"][i]),
            )
        return out

    def _named(self, part: str, weights: np.ndarray) -> dict[str, float]:
        return {name: float(w) for name, w in zip(self._feature_names[part], weights, strict=True)}


@contextmanager
def _without_onednn() -> Iterator[None]:
    """oneDNN off for the enclosed code, restored after (``torch.backends.mkldnn.flags`` would also set its
    TF32 flag, which warns on every call on a CPU-only build)."""
    import torch

    before = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = before
