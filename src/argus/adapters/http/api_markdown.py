"""The REST API as Markdown (``docs/api.md``), rendered from the app's own OpenAPI document.

``argus openapi --markdown`` (``scripts/gen-api-docs``) writes it; a test fails when the committed
file no longer matches what the app serves at ``/openapi.json``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from argus.adapters.http.ratelimit import DEFAULT_LIMITS

INTRO = """\
<!-- Generated from GET /openapi.json by scripts/gen-api-docs (argus openapi --markdown): do not edit. -->
# {title} REST API {version}

{description}

## Conventions

- **Authentication**: every endpoint except those marked *public* needs the API key in the
  `X-API-Key` header (the server's `TACHYON_API_KEY`). A missing or wrong key is a 401
  `{{"detail": "Invalid or missing API key"}}` with `WWW-Authenticate: ApiKey realm="argus", header="X-API-Key"`.
- **Errors** are JSON with a `detail`: a string (`{{"detail": "Not found"}}`), or for 422 a list of
  `{{"loc": ["body", "records", 0, "cpu_user_pct"], "msg": "...", "type": "value_error.number.not_le"}}`.
  A 500 adds `error` (`{{"detail": "Internal server error", "error": "..."}}`) and never carries a
  traceback; 429 and 503 come with `Retry-After` (seconds). Every response has `X-Request-ID`.
- **Rate limits** count per API key and group (`ARGUS_RATE_LIMITS` overrides them): {limits}.
- **Times** are UTC. Wire timestamps follow the reference: `2025-01-15T10:00:00` (no zone); a record
  timestamp may carry a zone and is converted to UTC. `/status` also gives `*_iso` fields with the zone.

The machine-readable document: `GET /openapi.json` (OpenAPI {openapi}, public).

"""


def render_markdown(doc: Mapping[str, Any]) -> str:
    """The whole document as Markdown: conventions, an endpoint table, each endpoint, each schema."""
    info = doc["info"]
    limits = ", ".join(f"`{group}` {limit}" for group, limit in DEFAULT_LIMITS.items())
    parts = [INTRO.format(title=info["title"], version=info["version"], description=info.get("description", ""),
                          limits=limits, openapi=doc["openapi"])]
    parts.append("## Endpoints\n\n| method | path | summary | key |\n|---|---|---|---|\n")
    operations = [(path, method, op) for path, item in doc["paths"].items() for method, op in item.items()]
    for path, method, op in operations:
        parts.append(f"| {method.upper()} | [`{path}`](#{_anchor(method, path)}) | {_cell(op.get('summary', ''))} | "
                     f"{'public' if op.get('security') == [] else 'yes'} |\n")
    for path, method, op in operations:
        parts.append(_operation(path, method, op))
    parts.append("## Schemas\n")
    for name, schema in doc["components"]["schemas"].items():
        parts.append(_schema(name, schema))
    return "".join(parts).rstrip("\n") + "\n"


def _anchor(method: str, path: str) -> str:
    return f"{method}-{path}".lower().replace("/", "").replace("{", "").replace("}", "").replace(".", "")


def _operation(path: str, method: str, op: Mapping[str, Any]) -> str:
    lines = [f'\n<a id="{_anchor(method, path)}"></a>\n### {method.upper()} `{path}`\n', f"{op.get('summary', '')}."
             + (" Public (no key)." if op.get("security") == [] else "") + "\n"]
    if op.get("description"):
        lines.append(f"\n{op['description']}\n")
    if op.get("parameters"):
        lines.append("\n| parameter | in | type | required | description |\n|---|---|---|---|---|\n")
        for p in op["parameters"]:
            lines.append(f"| `{p['name']}` | {p['in']} | {_type(p.get('schema', {}))} | "
                         f"{'yes' if p.get('required') else 'no'} | "
                         f"{_cell(_describe({**p.get('schema', {}), 'description': p.get('description', '')}))} |\n")
    if "requestBody" in op:
        for media, content in op["requestBody"].get("content", {}).items():
            lines.append(f"\nRequest body (`{media}`): {_type(content.get('schema', {}))}\n")
    lines.append("\n| status | meaning | body |\n|---|---|---|\n")
    for status, response in op.get("responses", {}).items():
        bodies = [f"{_type(c.get('schema', {}))} (`{m}`)" for m, c in response.get("content", {}).items()]
        lines.append(f"| {status} | {_cell(response.get('description', ''))} | {', '.join(bodies) or '–'} |\n")
    return "".join(lines)


def _schema(name: str, schema: Mapping[str, Any]) -> str:
    lines = [f'\n<a id="schema-{name.lower()}"></a>\n### {name}\n']
    if schema.get("description"):
        lines.append(f"\n{schema['description']}\n")
    properties = schema.get("properties")
    if not properties:
        lines.append(f"\n{_type(schema)}\n")
        return "".join(lines)
    required = set(schema.get("required", []))
    lines.append("\n| field | type | required | description |\n|---|---|---|---|\n")
    for field, sub in properties.items():
        lines.append(f"| `{field}` | {_type(sub)} | {'yes' if field in required else 'no'} | "
                     f"{_cell(_describe(sub))} |\n")
    return "".join(lines)


def _describe(schema: Mapping[str, Any]) -> str:
    text = schema.get("description", "")
    bounds = [f"{label} {schema[key]}" for key, label in (("minimum", "≥"), ("maximum", "≤"), ("minLength", "length ≥"),
                                                         ("maxLength", "length ≤")) if key in schema]
    if "default" in schema:
        bounds.append(f"default `{json.dumps(schema['default'])}`")
    if "enum" in schema:
        bounds.append("one of " + ", ".join(f"`{v}`" for v in schema["enum"]))
    if "pattern" in schema:
        bounds.append(f"pattern `{schema['pattern']}`")
    return "; ".join(part for part in (text, ", ".join(bounds)) if part)


def _type(schema: Mapping[str, Any]) -> str:
    """A schema in a few words: a link for a $ref, ``array of X``, ``object``, ``string | null``..."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#schema-{name.lower()})"
    for combinator in ("oneOf", "anyOf"):
        if combinator in schema:
            return " or ".join(_type(s) for s in schema[combinator])
    kind = schema.get("type", "any")
    text = " \\| ".join(kind) if isinstance(kind, list) else str(kind)
    if kind == "array" or (isinstance(kind, list) and "array" in kind):
        text += f" of {_type(schema.get('items', {}))}"
    if schema.get("format"):
        text += f" ({schema['format']})"
    return text


def _cell(text: Any) -> str:
    return json.dumps(text)[1:-1] if not isinstance(text, str) else text.replace("|", "\\|").replace("\n", " ")
