"""The rollup port: where a source's host observations wait for their five-minute step to close."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from argus.domain.rollup import Observation


class Receipt(Protocol):
    stored: int
    duplicate: int
    out_of_order: int


class SampleBuffer(Protocol):
    """Durable observations by server; the engine rolls each closed step up into one record."""

    def accept(self, observations: Sequence[Observation], source: str, now: float | None = None) -> Receipt:
        """Commit ``observations`` (all or none) before returning; drop repeats and samples of closed steps.

        ``source`` names the sender for Argus's metrics (``remote_write``, ``otlp``). A returned
        receipt means the stored observations survive a crash; raise when nothing could be stored.
        """
