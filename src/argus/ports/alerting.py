"""Alerting port: where alert transitions go once the engine has decided them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from argus.domain.alerts import ActiveAlert, AlertEvent


class AlertSink(Protocol):
    """A destination for alerts: a log, a webhook, Prometheus Alertmanager, a pager...

    Sinks are contributed by plugins through ``argus_alert_sinks`` and called by the
    ``AlertDispatcher`` on a thread of their own, one call at a time, never on the tick path:
    a sink may block (network I/O, retries) without slowing inference or requests.
    """

    name: str  # unique among the configured sinks: "log", "webhook", "alertmanager"...

    def send(self, event: AlertEvent) -> None:
        """Deliver one alert transition (raised, escalated, de-escalated, resolved).

        Every transition is offered; a sink decides which levels it cares about. Raise on failure
        after the sink's own retries: the dispatcher logs and counts the error and carries on.
        """
        ...

    def resend(self, active: Sequence[ActiveAlert]) -> None:
        """Re-deliver the alerts active now, for receivers that expire alerts not re-sent.

        Called periodically by the engine (about once a minute) with every active alert, possibly
        none. Sinks that deliver each transition once just return. Raise on failure.
        """
        ...


class AlertDispatch(Protocol):
    """Hands the engine's alert events to every sink without blocking the tick (``domain.dispatch.AlertDispatcher``)."""

    def dispatch(self, events: Iterable[AlertEvent]) -> None:
        """Queue each event for every sink; return at once."""
        ...

    def resend(self, active: Sequence[ActiveAlert]) -> None:
        """Queue the alerts active now (possibly none) for every sink; return at once."""
        ...
