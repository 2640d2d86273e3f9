"""A backstop liquidity vault (Hyperliquid's HLP): an account with the platform's capital
that takes over, at the bankruptcy price, positions the book cannot absorb, up to a cap on the
margin it commits."""

from __future__ import annotations

from typing import TYPE_CHECKING

from backstop.engine.config import EngineConfig
from backstop.engine.queries import cross_figures, lever_cents
from backstop.engine.settlement import apply_direct_trade
from backstop.math.margin import calculate_max_open_lots
from backstop.model.enums import MarginMode
from backstop.model.events import Event
from backstop.numeric import PPM
from backstop.state.exchange_state import ExchangeState

if TYPE_CHECKING:
    from backstop.engine.liquidation import Slice

VAULT_UID = 0
"""The vault's account id; user accounts start at 1."""


def vault_capacity_lots(state: ExchangeState, config: EngineConfig, cut: Slice) -> int:
    """Lots the vault may still take: IM of new exposure within ``vault_cap_share`` of its
    equity, less what its positions already use (rounded down)."""
    inst = cut.inst
    figures = cross_figures(state, VAULT_UID, inst.settle_ccy)
    cap_ppm = int(config.waterfall.vault_cap_share * PPM)
    budget = figures.equity * cap_ppm // PPM - figures.position_im
    lever = lever_cents(state, VAULT_UID, inst, MarginMode.CROSS)
    return calculate_max_open_lots(inst, budget, state.mark_ticks[inst.inst_id], lever, 0)


def apply_vault_takeover(state: ExchangeState, config: EngineConfig, cut: Slice, lots: int,
                         ts: int) -> tuple[int, list[Event]]:
    """The vault takes ``min(lots, capacity)`` at the bankruptcy price."""
    take = min(lots, vault_capacity_lots(state, config, cut))
    if take <= 0:
        return 0, []
    pos = cut.pos
    close_side = -1 if pos.size_lots > 0 else 1
    changes = apply_direct_trade(state, cut.inst, (pos.uid, pos.mgn_mode), close_side,
                                 (VAULT_UID, MarginMode.CROSS), take, cut.bankruptcy_ticks, ts)
    return take, list(changes)
