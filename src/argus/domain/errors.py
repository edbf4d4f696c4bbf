"""Domain errors: each carries a stable machine ``code`` and no HTTP status."""

from __future__ import annotations


class ArgusError(Exception):
    """Base of every error Argus raises on purpose."""

    code = "argus_error"


class UnknownServerError(ArgusError):
    """The server has never sent a record."""

    code = "unknown_server"

    def __init__(self, server_name: str) -> None:
        super().__init__(f"Unknown server: {server_name}")
        self.server_name = server_name


class EngineUnavailableError(ArgusError):
    """The engine process did not answer in time (down, busy or still starting)."""

    code = "engine_unavailable"

    def __init__(self, message: str = "Engine unavailable", retry_after_s: int = 5) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ConflictError(ArgusError):
    """The request conflicts with the current state (e.g. a training already running)."""

    code = "conflict"


class ModelNotLoadedError(ArgusError):
    """No forecasting model is loaded."""

    code = "model_not_loaded"

    def __init__(self, message: str = "Model not loaded") -> None:
        super().__init__(message)


class ConfigurationError(ArgusError):
    """Settings are missing or contradictory; raised at start-up, never per request."""

    code = "configuration_error"


class NotFoundError(ArgusError):
    """A named thing (a model, an export table) does not exist."""

    code = "not_found"


class BadRequestError(ArgusError):
    """The request is malformed in a way validation of its body does not cover."""

    code = "bad_request"
