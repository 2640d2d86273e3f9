"""What a route handler gets: the service, the caller, and the request's parameters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from backstop.api.limits import DEFAULT_LIMITS, Limits
from backstop.api.service import ExchangeService
from backstop.api.wire import OkxError
from backstop.model.events import Event, Rejected


@dataclass(frozen=True, slots=True)
class Ctx:
    """One request. ``uid`` is 0 on public routes; ``query`` holds the query string;
    ``body`` the raw bytes; ``now`` the service clock in epoch ms; ``limits`` the server's
    abuse limits (the open-order cap)."""

    service: ExchangeService
    uid: int
    query: dict[str, str]
    body: bytes
    now: int
    limits: Limits = DEFAULT_LIMITS

    @property
    def exchange(self):
        return self.service.exchange

    @property
    def catalogue(self):
        return self.service.exchange.catalogue


def rejection_of(events: list[Event]) -> Rejected | None:
    """The refusal among a command's events, if it was refused."""
    return next((e for e in events if isinstance(e, Rejected)), None)


def ensure_accepted(events: list[Event]) -> list[Event]:
    """Raise the refusal's OKX code as a request error; pass accepted events through."""
    rejected = rejection_of(events)
    if rejected is not None:
        raise OkxError(rejected.code, rejected.msg)
    return events


def param_dict(items: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in items}
