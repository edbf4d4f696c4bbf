"""Settings from ``ARGUS_*`` environment variables (and ``TACHYON_API_KEY``), with sane defaults."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path

import attrs

from argus.domain.errors import ConfigurationError
from argus.domain.explanation import ExplainSettings
from argus.domain.rollup import parse_disk_mountpoints

MIB = 1024 * 1024
SINK_PREFIX = "ARGUS_SINK_"


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigurationError(f"{name} must be at least {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, got {raw!r}") from None
    if value <= 0:
        raise ConfigurationError(f"{name} must be positive, got {value}")
    return value


def parse_sink_settings(env: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """Group ``ARGUS_SINK_<SECTION>_<KEY>=value`` variables into ``{section: {key: value}}``, lower-cased.

    The section is the first word after the prefix and the key is the rest, so
    ``ARGUS_SINK_WEBHOOK_TIMEOUT_S=5`` gives ``{"webhook": {"timeout_s": "5"}}``. Empty values are
    left out (unset); a variable without a key fails start-up.
    """
    sections: dict[str, dict[str, str]] = {}
    for name, value in env.items():
        if not name.upper().startswith(SINK_PREFIX) or value.strip() == "":
            continue
        section, _, key = name[len(SINK_PREFIX):].lower().partition("_")
        if not section or not key:
            raise ConfigurationError(f"{name} must be named {SINK_PREFIX}<SECTION>_<KEY>, e.g. ARGUS_SINK_WEBHOOK_URL")
        sections.setdefault(section, {})[key] = value.strip()
    return sections


#: What ARGUS_LOG_LEVEL and ARGUS_LOG_LIBRARIES accept (any case).
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    value = (env.get(name) or default).strip().lower()
    if value not in choices:
        raise ConfigurationError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _json_object(env: Mapping[str, str], name: str) -> dict[str, object]:
    raw = env.get(name)
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError as ex:
        raise ConfigurationError(f"{name} must be a JSON object: {ex}") from None
    if not isinstance(value, dict):
        raise ConfigurationError(f"{name} must be a JSON object, got {type(value).__name__}")
    return value


def _label_name(env: Mapping[str, str], name: str, default: str) -> str:
    value = (env.get(name) or default).strip()
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise ConfigurationError(f"{name} must be a Prometheus label name, got {value!r}")
    return value


def _attribute_name(env: Mapping[str, str], name: str, default: str) -> str:
    value = (env.get(name) or default).strip()
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_./-]{0,254}", value):
        raise ConfigurationError(f"{name} must be an OpenTelemetry attribute name such as host.name, got {value!r}")
    return value


def _disk_mountpoints(env: Mapping[str, str], name: str) -> tuple[tuple[str, str], ...]:
    try:
        return parse_disk_mountpoints(env.get(name) or "")
    except ValueError as ex:
        raise ConfigurationError(f"{name}: {ex}") from None


@attrs.frozen
class Settings:
    """Everything configurable about a running Argus. See README "Settings" for each one."""

    api_key: str | None = None
    data_dir: Path = Path("var")
    database_url: str = ""
    model_dir: Path = Path("models")
    device: str = "auto"
    rate_limit_storage: str = "memory://"
    rate_limits: str = ""
    rolling_window_size: int = 2880
    max_body_bytes: int = 10 * MIB
    max_records_per_request: int = 50_000
    request_read_timeout_s: float = 10.0
    engine_poll_interval_s: float = 0.25
    tick_interval_s: float = 2.0
    engine_stale_after_s: float = 30.0
    engine_sharding: bool = False
    engine_lease_s: float = 10.0
    torch_threads: int = 1
    log_level: str = "INFO"
    log_format: str = "text"
    log_libraries: str = "WARNING"
    disabled_plugins: tuple[str, ...] = ()
    history_retention_days: int = 90
    records_retention_days: int = 35
    max_clock_skew_s: float = 300.0
    auto_promote: str = "better"
    training_options: Mapping[str, object] = attrs.field(factory=dict, hash=False)
    training_cancel_grace_s: float = 30.0
    explain_timeout_s: float = 10.0
    admin_timeout_s: float = 60.0
    explain_precompute_max: int = 5
    explain_shap_samples: int = 128
    explain_shap_output: str = "driver_forecast"
    sink_settings: Mapping[str, Mapping[str, str]] = attrs.field(factory=dict, hash=False)
    metrics_public: bool = False
    metrics_max_servers: int = 500
    step_seconds: int = 300
    remote_write_server_label: str = "instance"
    otlp_server_attribute: str = "host.name"
    disk_mountpoints: tuple[tuple[str, str], ...] = ()

    @property
    def explain_settings(self) -> ExplainSettings:
        """What the ``argus_explainers`` hook receives: every ARGUS_EXPLAIN_* setting, typed."""
        return ExplainSettings(timeout_s=self.explain_timeout_s, precompute_max=self.explain_precompute_max,
                               shap_samples=self.explain_shap_samples, shap_output=self.explain_shap_output)

    @property
    def api_key_file(self) -> Path:
        return self.data_dir / "api_key"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read settings from ``env`` (default: ``os.environ``); raise ConfigurationError on bad values."""
        env = os.environ if env is None else env
        data_dir = Path(env.get("ARGUS_DATA_DIR") or "var").expanduser().resolve()
        database_url = env.get("ARGUS_DATABASE_URL") or f"sqlite:///{data_dir / 'argus.db'}"
        device = (env.get("ARGUS_DEVICE") or "auto").lower()
        if device not in {"auto", "cpu", "cuda"} and not device.startswith("cuda:"):
            raise ConfigurationError(f"ARGUS_DEVICE must be auto, cpu or cuda, got {device!r}")
        disabled = tuple(p.strip() for p in (env.get("ARGUS_DISABLED_PLUGINS") or "").split(",") if p.strip())
        return cls(
            api_key=env.get("TACHYON_API_KEY") or None,
            data_dir=data_dir,
            database_url=database_url,
            model_dir=Path(env.get("ARGUS_MODEL_DIR") or "models").expanduser().resolve(),
            device=device,
            rate_limit_storage=env.get("ARGUS_RATE_LIMIT_STORAGE") or "memory://",
            rate_limits=env.get("ARGUS_RATE_LIMITS") or "",
            rolling_window_size=_int(env, "ARGUS_ROLLING_WINDOW_SIZE", 2880, minimum=12),
            max_body_bytes=_int(env, "ARGUS_MAX_BODY_BYTES", 10 * MIB, minimum=1024),
            max_records_per_request=_int(env, "ARGUS_MAX_RECORDS_PER_REQUEST", 50_000, minimum=1),
            request_read_timeout_s=_float(env, "ARGUS_REQUEST_READ_TIMEOUT_S", 10.0),
            engine_poll_interval_s=_float(env, "ARGUS_ENGINE_POLL_S", 0.25),
            tick_interval_s=_float(env, "ARGUS_TICK_INTERVAL_S", 2.0),
            engine_stale_after_s=_float(env, "ARGUS_ENGINE_STALE_AFTER_S", 30.0),
            engine_sharding=_choice(env, "ARGUS_ENGINE_SHARDING", ("0", "1"), "0") == "1",
            engine_lease_s=_float(env, "ARGUS_ENGINE_LEASE_S", 10.0),
            torch_threads=_int(env, "ARGUS_TORCH_THREADS", 1, minimum=1),
            log_level=_choice(env, "ARGUS_LOG_LEVEL", LOG_LEVELS, "info").upper(),
            log_format=_choice(env, "ARGUS_LOG_FORMAT", ("text", "json"), "text"),
            log_libraries=_choice(env, "ARGUS_LOG_LIBRARIES", LOG_LEVELS, "warning").upper(),
            disabled_plugins=disabled,
            auto_promote=_choice(env, "ARGUS_AUTO_PROMOTE", ("better", "always", "never"), "better"),
            training_options=_json_object(env, "ARGUS_TRAINING_OPTIONS"),
            training_cancel_grace_s=_float(env, "ARGUS_TRAINING_CANCEL_GRACE_S", 30.0),
            history_retention_days=_int(env, "ARGUS_HISTORY_RETENTION_DAYS", 90, minimum=1),
            records_retention_days=_int(env, "ARGUS_RECORDS_RETENTION_DAYS", 35, minimum=1),
            max_clock_skew_s=_float(env, "ARGUS_MAX_CLOCK_SKEW_S", 300.0),
            explain_timeout_s=_float(env, "ARGUS_EXPLAIN_TIMEOUT_S", 10.0),
            admin_timeout_s=_float(env, "ARGUS_ADMIN_TIMEOUT_S", 60.0),
            explain_precompute_max=_int(env, "ARGUS_EXPLAIN_PRECOMPUTE_MAX", 5, minimum=0),
            explain_shap_samples=_int(env, "ARGUS_EXPLAIN_SHAP_SAMPLES", 128, minimum=16),
            explain_shap_output=_choice(env, "ARGUS_EXPLAIN_SHAP_OUTPUT", ("driver_forecast", "risk_score"),
                                        "driver_forecast"),
            sink_settings=parse_sink_settings(env),
            metrics_public=_choice(env, "ARGUS_METRICS_PUBLIC", ("0", "1"), "0") == "1",
            metrics_max_servers=_int(env, "ARGUS_METRICS_MAX_SERVERS", 500, minimum=0),
            step_seconds=_int(env, "ARGUS_STEP_SECONDS", 300, minimum=1),
            remote_write_server_label=_label_name(env, "ARGUS_REMOTE_WRITE_SERVER_LABEL", "instance"),
            otlp_server_attribute=_attribute_name(env, "ARGUS_OTLP_SERVER_ATTRIBUTE", "host.name"),
            disk_mountpoints=_disk_mountpoints(env, "ARGUS_DISK_MOUNTPOINTS"),
        )

    def child_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment for a child process (the training job) that must see these same settings."""
        env = dict(os.environ if base is None else base)
        env.update({
            "ARGUS_DATA_DIR": str(self.data_dir),
            "ARGUS_DATABASE_URL": self.database_url,
            "ARGUS_MODEL_DIR": str(self.model_dir),
            "ARGUS_DEVICE": self.device,
            "ARGUS_TORCH_THREADS": str(self.torch_threads),
            "OMP_NUM_THREADS": str(self.torch_threads),
            "ARGUS_LOG_LEVEL": self.log_level,
            "ARGUS_LOG_FORMAT": self.log_format,
            "ARGUS_LOG_LIBRARIES": self.log_libraries,
            "ARGUS_AUTO_PROMOTE": self.auto_promote,
            "ARGUS_TRAINING_OPTIONS": json.dumps(dict(self.training_options)),
        })
        return env
