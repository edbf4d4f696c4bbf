"""Web workers import the forecaster and registry without paying for torch (about 7 s)."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_serving_side_does_not_import_torch_or_pandas():
    code = (
        "import sys\n"
        "import argus.domain.forecast, argus.ports.forecasting, argus.adapters.baselines\n"
        "import argus.adapters.tft.forecaster, argus.adapters.tft.registry, argus.adapters.tft.evaluation\n"
        "import argus.entrypoints.model_cli\n"
        "heavy = [m for m in ('torch', 'lightning', 'pytorch_forecasting', 'pandas', 'matplotlib') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_loading_without_a_current_model_fails_before_importing_torch(tmp_path):
    """An engine (or a test) started before any model is trained pays a second, not seven, for its forecaster."""
    code = (
        "import sys\n"
        "from argus.adapters.tft.forecaster import TftForecaster\n"
        "from argus.adapters.tft.registry import DirectoryModelRegistry\n"
        "from argus.domain.errors import ModelNotLoadedError\n"
        f"try:\n    TftForecaster.load(DirectoryModelRegistry({str(tmp_path)!r}))\n"
        "except ModelNotLoadedError:\n    pass\n"
        "else:\n    raise AssertionError('loaded a model from an empty directory')\n"
        "assert 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
