"""pytest plugin for the light CI stage (``.ci/run``: a newer Python without the CUDA-sized torch stack).

``python -m pytest -p tests.without_torch``: a test module that cannot import torch, shap, lightning or
pytorch_forecasting, and a test that fails because one of them is missing (raised through it, or caught
and logged by the code under test, as the explain service does), is reported as skipped with that
reason instead of failing. Every other test runs and must pass as usual.
"""

from __future__ import annotations

import re

import pytest

HEAVY = ("torch", "shap", "lightning", "pytorch_forecasting")
_MISSING = re.compile(r"No module named '(" + "|".join(HEAVY) + r")[.']")


def _missing_heavy(exc: BaseException | None) -> str | None:
    """The heavy module whose absence raised ``exc`` (anywhere in its chain), or None."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] in HEAVY:
            return exc.name
        exc = exc.__cause__ or exc.__context__
    return None


def _skip(report, path, line: int, name: str) -> None:
    report.outcome = "skipped"
    report.longrepr = (str(path), line, f"Skipped: needs {name} (not installed in this stage)")


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    report = yield
    if report.failed and isinstance(collector, pytest.Module):
        found = _MISSING.search(str(report.longrepr))
        if found:
            _skip(report, collector.path, 0, found.group(1))
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        name = _missing_heavy(call.excinfo.value if call.excinfo else None)
        if name is None:
            logged = "\n".join(content for _, content in report.sections) + str(report.longrepr)
            found = _MISSING.search(logged)
            name = found.group(1) if found else None
        if name:
            _skip(report, item.path, item.location[1] or 0, name)
    return report
