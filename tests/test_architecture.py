"""The dependency rule: the inside (domain, ports) imports no framework or adapter."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "argus"
FORBIDDEN = {
    "falcon", "sqlalchemy", "torch", "pytorch_forecasting", "lightning", "shap", "pandas", "gunicorn",
    "dependency_injector", "alembic", "limits", "redis", "orjson", "click", "cattrs", "pluggy",
}
INSIDE_FORBIDDEN_ARGUS = ("argus.adapters", "argus.entrypoints", "argus.plugins")


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


INSIDE_FILES = sorted((SRC / "domain").rglob("*.py")) + sorted((SRC / "ports").rglob("*.py"))


@pytest.mark.parametrize("path", INSIDE_FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_domain_and_ports_import_no_framework_or_adapter(path):
    for name in _imports(path):
        assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"
        assert not name.startswith(INSIDE_FORBIDDEN_ARGUS), f"{path.name} imports {name}"


def test_only_domain_services_import_ports():
    offenders = [
        p.name for p in sorted((SRC / "domain").rglob("*.py"))
        if p.name != "services.py" and any(n.startswith("argus.ports") for n in _imports(p))
    ]
    assert offenders == []


def test_dependency_injector_lives_only_in_entrypoints():
    offenders = [
        str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
        if "entrypoints" not in p.parts and any(n.startswith("dependency_injector") for n in _imports(p))
    ]
    assert offenders == []


def test_the_guard_sees_a_forbidden_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import torch\nfrom sqlalchemy import text\n")
    assert {"torch", "sqlalchemy"} <= set(_imports(bad))
