"""The dependency rule, enforced on the import statements of src/argus.

Which way imports point (the direction settled for issue 15):

* ``domain`` imports the standard library, attrs, numpy and itself: no framework, no adapter, no
  plugin, no entry point, and no JSON library (bodies are rendered by adapters from plain values). It names ``argus.ports`` only under ``if TYPE_CHECKING:`` (to annotate a
  collaborator with its port), so at run time the domain never imports a port.
* ``ports`` are Protocols over domain types: they import the domain (at package level, freely),
  never a framework, an adapter, a plugin or an entry point.
* ``adapters`` import frameworks, the domain and the ports, never an entry point or a plugin, and
  another adapter package only through ``ADAPTER_ALLOW`` below (each pair says why).
* ``plugins`` may import the adapters they ship as built-ins; ``entrypoints`` may import anything.
"""

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
#: The domain hands plain values to adapters, which write the wire format (orjson is already in FORBIDDEN).
DOMAIN_ONLY_FORBIDDEN = {"json"}


def _imports(path: Path, *, runtime_only: bool = False) -> list[str]:
    """Module names ``path`` imports (absolute imports); ``runtime_only`` skips ``if TYPE_CHECKING:`` blocks."""
    return imported_names(path.read_text(), str(path), runtime_only=runtime_only)


def imported_names(source: str, filename: str = "<string>", *, runtime_only: bool = False) -> list[str]:
    tree = ast.parse(source, filename=filename)
    skipped: set[int] = set()
    if runtime_only:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and _is_type_checking(node.test):
                skipped.update(id(inner) for stmt in node.body for inner in ast.walk(stmt))
    names = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def inside_violations(layer: str, names: list[str], runtime_names: list[str]) -> list[str]:
    """What breaks the rule for one module of ``layer`` ("domain" or "ports")."""
    bad = [n for n in names if n.split(".")[0] in FORBIDDEN or n.startswith(INSIDE_FORBIDDEN_ARGUS)]
    if layer == "domain":
        bad += [n for n in names if n.split(".")[0] in DOMAIN_ONLY_FORBIDDEN]
        bad += [n for n in runtime_names if n.startswith("argus.ports")]
    return bad


#: (importing adapter package, imported adapter package) pairs allowed, and why. Anything else is one
#: technology's adapter reaching into another's: share the piece through the domain or a port instead.
_MODEL = ("tft", "blend", "calibration", "probability_fit", "structural", "bench", "baselines")
ADAPTER_ALLOW: dict[tuple[str, str], str] = {
    **{(a, b): "one technology: the forecasting model, its blend, calibration and evaluation"
       for a in _MODEL for b in _MODEL if a != b},
    ("http", "telemetry"): "the HTTP adapter counts requests and ingestion in Argus's own metrics",
    ("http", "liveness"): "GET /status asks whether the engine process that published the status still runs",
    ("http", "prometheus"): "POST /api/v1/write decodes Prometheus remote_write with the prometheus codec",
    ("http", "otlp"): "POST /v1/metrics decodes OTLP with the otlp codec",
}


def _adapter_package(path: Path) -> str:
    return path.relative_to(SRC / "adapters").parts[0].removesuffix(".py")


def adapter_violations(package: str, names: list[str]) -> list[str]:
    """Imports of one module in adapter ``package`` that break the rule (see the module docstring)."""
    def other_adapter(name: str) -> str | None:
        parts = name.split(".")
        return parts[2] if name.startswith("argus.adapters.") and parts[2] != package else None

    return [n for n in names if n.startswith(("argus.entrypoints", "argus.plugins"))
            or (other_adapter(n) is not None and (package, other_adapter(n)) not in ADAPTER_ALLOW)]


ADAPTER_FILES = sorted(p for p in (SRC / "adapters").rglob("*.py") if p != SRC / "adapters" / "__init__.py")


@pytest.mark.parametrize("path", ADAPTER_FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_adapters_import_no_other_adapter_outside_the_allow_list(path):
    assert adapter_violations(_adapter_package(path), _imports(path)) == [], path.name


def test_the_adapter_guard_catches_a_planted_cross_adapter_import():
    planted = imported_names("from argus.adapters.tft.data import ServerSeries\nimport argus.adapters.explain.game\n"
                             "from argus.adapters.http.app import build_app\nfrom argus.entrypoints.cli import main\n")
    assert adapter_violations("explain", planted) == [
        "argus.adapters.tft.data", "argus.adapters.http.app", "argus.entrypoints.cli"]
    assert adapter_violations("blend", ["argus.adapters.tft.forecaster"]) == []  # allowed, with its reason


INSIDE_FILES = sorted((SRC / "domain").rglob("*.py")) + sorted((SRC / "ports").rglob("*.py"))


@pytest.mark.parametrize("path", INSIDE_FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_domain_and_ports_import_no_framework_or_adapter(path):
    layer = path.relative_to(SRC).parts[0]
    assert inside_violations(layer, _imports(path), _imports(path, runtime_only=True)) == [], path.name


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


def test_the_guard_catches_planted_inside_violations():
    """Synthetic modules: each planted import is caught, and a TYPE_CHECKING-only port import is allowed."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "import falcon\n"
        "from argus.adapters.sql.store import SqlMetricsStore\n"
        "from argus.ports.storage import EngineFeed\n"
        "if TYPE_CHECKING:\n"
        "    from argus.ports.alerting import AlertSink\n"
    )
    names, runtime = imported_names(source), imported_names(source, runtime_only=True)
    assert "argus.ports.alerting" in names and "argus.ports.alerting" not in runtime
    assert inside_violations("domain", names, runtime) == [
        "falcon", "argus.adapters.sql.store", "argus.ports.storage"]
    assert inside_violations("ports", names, runtime) == ["falcon", "argus.adapters.sql.store"]
    typed_only = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from argus.ports.channel import EngineChannel\n"
    assert inside_violations("domain", imported_names(typed_only), imported_names(typed_only, runtime_only=True)) == []


def test_every_sql_module_names_its_port_or_says_it_is_adapter_internal():
    """SQL classes either implement a port or are named adapter-internal in their module's docstring."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "src" / "argus" / "adapters" / "sql"
    unnamed = [p.name for p in sorted(root.glob("*.py"))
               if p.name != "__init__.py"
               and not any(word in (ast.get_docstring(ast.parse(p.read_text())) or "")
                           for word in ("Port: ", "Adapter-internal"))]
    assert unnamed == [], f"say 'Port: ...' or 'Adapter-internal' in the docstring of {unnamed}"


def test_the_domain_renders_no_json_but_ports_and_adapters_may():
    names = imported_names("import json\nfrom json import dumps\nimport orjson\n")
    assert inside_violations("domain", names, names) == ["orjson", "json", "json"]
    assert inside_violations("ports", ["json"], ["json"]) == []
