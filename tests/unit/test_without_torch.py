"""The light CI stage's plugin: only a missing torch stack turns a failure into a skip."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CASES = '''
import logging
import pytest

def test_missing_torch_raised():
    raise ModuleNotFoundError("No module named 'torch'", name="torch")

def test_missing_shap_caught_and_logged():
    try:
        raise ModuleNotFoundError("No module named 'shap'", name="shap")
    except ModuleNotFoundError:
        logging.getLogger("argus.explain").exception("explainer 'shap' failed")
    assert False, "the explanation has no shap section"

def test_other_missing_module_fails():
    raise ModuleNotFoundError("No module named 'requests'", name="requests")

def test_a_name_that_only_starts_like_torch_fails():
    raise ModuleNotFoundError("No module named 'torchvision'", name="torchvision")

def test_plain_failure_fails():
    assert 1 == 2

def test_passes():
    pass
'''


def test_only_failures_caused_by_a_missing_torch_stack_are_skipped(tmp_path):
    (tmp_path / "test_cases.py").write_text(CASES)
    (tmp_path / "test_imports_torch.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'torch'\", name='torch')\n")
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "tests.without_torch", "-p", "no:cacheprovider",
                             "-q", "-rfs", "--rootdir", str(tmp_path), str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    summary = result.stdout.strip().splitlines()[-1]
    assert summary.startswith("3 failed, 1 passed, 3 skipped"), result.stdout[-3000:]
    assert "needs torch (not installed in this stage)" in result.stdout
    assert "needs shap (not installed in this stage)" in result.stdout
    failed = {line.split("::")[1].split()[0] for line in result.stdout.splitlines() if line.startswith("FAILED")}
    assert failed == {"test_other_missing_module_fails", "test_a_name_that_only_starts_like_torch_fails",
                      "test_plain_failure_fails"}
