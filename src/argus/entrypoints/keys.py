"""The API key: from TACHYON_API_KEY, or a generated key kept in a 0600 file in the data directory."""

from __future__ import annotations

import os
import secrets
import stat

from argus.domain.errors import ConfigurationError
from argus.entrypoints.settings import Settings

NO_KEY_MESSAGE = (
    "No API key configured: set TACHYON_API_KEY, or run `argus serve --generate-key` once to create "
    "one in {path} (Argus never runs without a key)."
)


MIN_KEY_CHARS = 16


def checked_api_key(key: str, source: str) -> str:
    """Return ``key`` without surrounding whitespace; refuse one too short to resist guessing, or unsendable."""
    key = key.strip()
    if not key:
        raise ConfigurationError(f"{source} is empty or only whitespace; set a random key of at least "
                                 f"{MIN_KEY_CHARS} characters (or unset it and use --generate-key)")
    if len(key) < MIN_KEY_CHARS:
        raise ConfigurationError(f"{source} is {len(key)} characters long; use at least {MIN_KEY_CHARS} "
                                 "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in key):
        raise ConfigurationError(f"{source} contains a control character; no client can send it in a header")
    return key


def resolve_api_key(settings: Settings) -> str | None:
    """Return the configured key: the environment wins over the key file; None when neither exists."""
    if settings.api_key is not None and settings.api_key != "":
        return checked_api_key(settings.api_key, "TACHYON_API_KEY")
    path = settings.api_key_file
    if not path.exists():
        return None
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ConfigurationError(f"{path} is readable by other users (mode {mode:o}); chmod 600 it")
    return checked_api_key(path.read_text(), str(path))


def require_api_key(settings: Settings) -> str:
    """Return the key or raise ConfigurationError (fail closed)."""
    key = resolve_api_key(settings)
    if key is None:
        raise ConfigurationError(NO_KEY_MESSAGE.format(path=settings.api_key_file))
    return key


def generate_api_key(settings: Settings) -> str:
    """Create a random key in the key file (mode 0600, never overwriting one) and return it."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    fd = os.open(settings.api_key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key
