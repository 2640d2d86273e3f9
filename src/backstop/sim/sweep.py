"""``backstop sweep``: a grid or random search over fund and policy settings, on local
processes or a Ray cluster.

Every point runs the same small scenario through the **exact engine**
(:mod:`backstop.sim.agreement`: an isolated BTC-USDT-SWAP population opened against one
market maker, a depth-curve ladder, mark = index) on a few seeded paths, so every parameter
acts through the engine's own policy code:

==================  ===========================================  ==============================
key                 what it sets                                 where
==================  ===========================================  ==============================
``fund``            initial insurance fund, USDT                 ``insurance_fund.initial``
``liq_fee``         liquidation fee rate (= taker fee)           instrument ``takerFee``
``mmr_scale``       multiplier on every tier's mmr               instrument tiers
``fee_share``       share of trading fees paid into the fund     ``insurance_fund.trading_fee_share``
``adl_threshold``   fund decline from peak that starts ADL       ``adl.decline_share``
``adl_ranking``     ADL queue ranking                            ``adl.ranking``
``liq_style``       liquidation style                            ``liquidation.style``
==================  ===========================================  ==============================

Metrics per point, over its paths: the fund's minimum (worst and mean) and end (mean), USDT;
``p_adl`` (share of paths with an ADL event or ADL state); bankruptcy loss paid by the fund,
ADL notional and liquidations (means per path, USDT or count); distinct accounts deleveraged.

Where: :func:`run_sweep` runs the points on local processes (one per CPU) by default. With
``ray_address`` it runs them as Ray tasks (Ray is the optional extra ``backstop[ray]``):
``"local"`` starts a small local Ray (2 CPUs, no dashboard, a 200 MB object store), anything
else is a cluster address (``ray.init(address=...)``), whose workers need ``backstop``
installed. The same :func:`run_point` serves both. Ctrl-C keeps the points already done.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from backstop.engine.config import ADL_RANKINGS, LIQUIDATION_STYLES
from backstop.model.events import AdlStateChanged, AutoDeleveraged, InsuranceFundChanged, LiquidationSettled
from backstop.numeric import MONEY_UNIT
from backstop.sim.exact_scenario import (
    BTC_PER_LOT,
    agreement_config,
    btc_catalogue,
    build_scenario,
    ohlc_from_prices,
    run_engine,
)
from backstop.sim.impact import DAY_MEDIAN_CURVE
from backstop.sim.mc_cli import MODELS, default_steps, generate_prices, write_table
from backstop.sim.paths import MINUTE_YEARS, merton_paths

TIER1_IMR = Decimal("0.01")
TIER1_MMR = Decimal("0.004")


@dataclass(frozen=True)
class Param:
    """One sweep key: its default, how to parse a value, and a random draw (seeded)."""

    default: Any
    parse: Callable[[str], Any]
    draw: Callable[[np.random.Generator], Any]
    check: Callable[[Any], bool]
    rule: str


def _choice(options: tuple[str, ...]) -> Callable[[np.random.Generator], str]:
    return lambda rng: options[int(rng.integers(len(options)))]


PARAMS: dict[str, Param] = {
    "fund": Param(2_000.0, float, lambda r: float(round(10 ** r.uniform(2, 5), 0)),
                  lambda v: math.isfinite(v) and v >= 0, "a USDT amount >= 0"),
    "liq_fee": Param(0.0005, float, lambda r: float(round(r.uniform(0.0002, 0.002), 5)),
                     lambda v: 0 <= v < 0.05, "a rate in [0, 0.05)"),
    "mmr_scale": Param(1.0, float, lambda r: float(round(r.uniform(0.5, 2.0), 3)),
                       lambda v: v > 0 and Decimal(repr(v)) * TIER1_MMR < TIER1_IMR,
                       "> 0 and below 2.5 (tier 1 mmr must stay under its imr 0.01)"),
    "fee_share": Param(0.0, float, lambda r: float(round(r.uniform(0, 0.5), 3)),
                       lambda v: 0 <= v <= 1, "a share in [0, 1]"),
    "adl_threshold": Param(0.30, float, lambda r: float(round(r.uniform(0.1, 1.0), 3)),
                           lambda v: 0 < v <= 1, "a share in (0, 1]"),
    "adl_ranking": Param("okx", str, _choice(ADL_RANKINGS), lambda v: v in ADL_RANKINGS,
                         f"one of {', '.join(ADL_RANKINGS)}"),
    "liq_style": Param("okx_tiers", str, _choice(LIQUIDATION_STYLES), lambda v: v in LIQUIDATION_STYLES,
                       f"one of {', '.join(LIQUIDATION_STYLES)}"),
}
METRICS = ("fund_min_usdt", "fund_min_mean_usdt", "fund_end_mean_usdt", "p_adl", "bankruptcy_loss_usdt",
           "adl_notional_usdt", "accounts_deleveraged", "n_liquidations")


def parse_value(key: str, text: str) -> Any:
    """One value of ``key`` from text; ValueError with the rule when impossible."""
    if key not in PARAMS:
        raise ValueError(f"unknown sweep key {key!r}; keys: {', '.join(PARAMS)}")
    param = PARAMS[key]
    try:
        value = param.parse(text.strip())
    except ValueError:
        raise ValueError(f"sweep {key}: bad value {text!r} ({param.rule})") from None
    if not param.check(value):
        raise ValueError(f"sweep {key}: bad value {text!r} ({param.rule})")
    return value


def parse_grid(specs: list[str]) -> dict[str, list[Any]]:
    """``["fund=1000,5000", "adl_ranking=okx,pro_rata"]`` -> ``{key: [values]}``."""
    grid: dict[str, list[Any]] = {}
    for spec in specs:
        key, sep, values = spec.partition("=")
        key = key.strip()
        if not sep or not values.strip():
            raise ValueError(f"--grid needs KEY=V1,V2,..., got {spec!r}")
        if key in grid:
            raise ValueError(f"--grid key {key!r} given twice")
        grid[key] = [parse_value(key, v) for v in values.split(",")]
    return grid


def grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The cartesian product of ``grid`` over the defaults of every other key."""
    keys = list(grid)
    base = {k: p.default for k, p in PARAMS.items()}
    return [{**base, **dict(zip(keys, combo, strict=True))} for combo in itertools.product(*grid.values())]


def random_points(n: int, seed: int, grid: dict[str, list[Any]] | None = None) -> list[dict[str, Any]]:
    """``n`` seeded random points. With ``grid``, each of its keys is drawn uniformly from its
    listed values and the other keys stay at their defaults; without, every key is drawn from
    its own range (:data:`PARAMS`)."""
    rng = np.random.default_rng(seed)
    if grid:
        return [{k: (grid[k][int(rng.integers(len(grid[k])))] if k in grid else p.default)
                 for k, p in PARAMS.items()} for _ in range(n)]
    return [{k: p.draw(rng) for k, p in PARAMS.items()} for _ in range(n)]


# -- one point through the engine ------------------------------------------------------------


def _engine_inputs(point: dict[str, Any]):
    catalogue = btc_catalogue(Decimal(repr(point["mmr_scale"])), Decimal(repr(point["liq_fee"])))
    config = agreement_config(
        Decimal(repr(point["fund"])),
        insurance_fund={"trading_fee_share": str(point["fee_share"])},
        adl={"decline_share": str(point["adl_threshold"]), "ranking": point["adl_ranking"]},
        liquidation={"style": point["liq_style"]},
    )
    return catalogue, config


def path_metrics(events: list, fund_start_usdt: float) -> dict[str, float]:
    """Fund minimum and end, ADL flag, loss, ADL notional and deleveraged accounts of one run."""
    unit = float(MONEY_UNIT)
    balances = [e.balance * unit for e in events if isinstance(e, InsuranceFundChanged)]
    adl = [e for e in events if isinstance(e, AutoDeleveraged)]
    started = any(isinstance(e, AdlStateChanged) and e.adl_type != "adl_end" for e in events)
    settled = [e for e in events if isinstance(e, LiquidationSettled)]
    return {
        "fund_min_usdt": min([fund_start_usdt, *balances]),
        "fund_end_usdt": balances[-1] if balances else fund_start_usdt,
        "adl": float(bool(adl) or started),
        "bankruptcy_loss_usdt": sum(e.from_fund for e in settled) * unit,
        "adl_notional_usdt": sum(e.lots * e.px_ticks * 0.1 * float(BTC_PER_LOT) for e in adl),
        "deleveraged": {e.uid for e in adl},
        "n_liquidations": float(len({e.uid for e in settled})),
    }


def run_point(point: dict[str, Any], prices: np.ndarray, accounts: int, seed: int) -> dict[str, Any]:
    """Run the scenario on every path of ``prices`` (n_paths, n_times); one row of results."""
    catalogue, config = _engine_inputs(point)
    runs = []
    for p in range(prices.shape[0]):
        sc = build_scenario(ohlc_from_prices(prices[p]), accounts, seed + p, DAY_MEDIAN_CURVE,
                            config, catalogue, invariants="linear")
        run_engine(sc)
        runs.append(path_metrics(sc.events, point["fund"]))
    deleveraged = set().union(*(r["deleveraged"] for r in runs))
    return {
        **point,
        "fund_min_usdt": min(r["fund_min_usdt"] for r in runs),
        "fund_min_mean_usdt": float(np.mean([r["fund_min_usdt"] for r in runs])),
        "fund_end_mean_usdt": float(np.mean([r["fund_end_usdt"] for r in runs])),
        "p_adl": float(np.mean([r["adl"] for r in runs])),
        "bankruptcy_loss_usdt": float(np.mean([r["bankruptcy_loss_usdt"] for r in runs])),
        "adl_notional_usdt": float(np.mean([r["adl_notional_usdt"] for r in runs])),
        "accounts_deleveraged": len(deleveraged),
        "n_liquidations": float(np.mean([r["n_liquidations"] for r in runs])),
    }


# -- where the points run --------------------------------------------------------------------

RAY_HINT = "for a Ray cluster: pip install 'backstop[ray]' and pass --ray-address ADDRESS"


def init_ray(address: str) -> Any:
    """Connect to ``address`` (a running cluster) or, for ``"local"``, start a small local Ray;
    returns ``ray``. Raises ``ValueError`` when Ray is not installed or not reachable."""
    try:
        import ray
    except ImportError:
        raise ValueError(f"--ray-address needs Ray, which is not installed; {RAY_HINT}") from None
    if ray.is_initialized():
        return ray
    if address == "local":
        ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200_000_000,
                 log_to_driver=False, configure_logging=False)
        return ray
    try:
        ray.init(address=address, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise ValueError(f"cannot connect to Ray at {address}: {error}".splitlines()[0]) from error
    return ray


def local_workers(n_points: int) -> int:
    """Processes for a local sweep: one per CPU, at most one per point."""
    return max(1, min(n_points, os.cpu_count() or 1))


SWEEP_MODELS = ("stress", *MODELS)
# The "stress" model: Merton jumps at 3 a day of N(-8 %, 4 %) on 60 % diffusion with no log drift,
# a crash-day stress (not fitted: the fitted jump model rarely bankrupts anyone in one day).
STRESS_JUMPS = {"rate_per_year": 365.0 * 3, "mean": -0.08, "std": 0.04, "sigma": 0.6}


def stress_prices(rng: np.random.Generator, n_paths: int, n_steps: int, s0: float = 100_000.0) -> np.ndarray:
    """:data:`STRESS_JUMPS` paths (n_paths, n_steps + 1), one-minute steps, USDT per BTC."""
    j = STRESS_JUMPS
    kappa = math.exp(j["mean"] + 0.5 * j["std"] ** 2) - 1.0
    mu = j["rate_per_year"] * kappa + 0.5 * j["sigma"] ** 2
    return merton_paths(rng, s0, n_paths, n_steps, MINUTE_YEARS, mu, j["sigma"], j["rate_per_year"],
                        j["mean"], j["std"])


def sweep_prices(model: str, n_paths: int, n_steps: int, seed: int) -> np.ndarray:
    """The shared paths every point runs on (seeded); ``model`` in :data:`SWEEP_MODELS`."""
    rng = np.random.default_rng(seed)
    if model == "stress":
        return stress_prices(rng, n_paths, n_steps)
    if model not in MODELS:
        raise ValueError(f"--model must be one of {', '.join(SWEEP_MODELS)}, got {model!r}")
    return generate_prices(model, rng, n_paths, n_steps)


def run_sweep(points: list[dict[str, Any]], paths: int = 2, accounts: int = 100, seed: int = 0,
              model: str = "stress", steps: int | None = None, ray_address: str | None = None,
              on_result: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Run every point on local processes, or as Ray tasks when ``ray_address`` is given; rows
    come back in point order, the same either way. ``steps`` (minutes per path) defaults to
    one crash cycle for ``crash`` and a day otherwise.

    Ctrl-C cancels the points still running and returns the rows already done.
    """
    if not points:
        raise ValueError("no sweep points")
    steps = default_steps(model) if steps is None else steps
    if paths < 1 or accounts < 1 or steps < 1:
        raise ValueError("--paths, --accounts and steps must be >= 1")
    prices = sweep_prices(model, paths, steps, seed)
    if ray_address:
        return _run_on_ray(init_ray(ray_address), points, prices, accounts, seed, on_result)
    return _run_on_processes(points, prices, accounts, seed, on_result)


def _run_on_processes(points: list[dict[str, Any]], prices: np.ndarray, accounts: int, seed: int,
                      on_result: Callable[[dict[str, Any]], None] | None) -> list[dict[str, Any]]:
    done: dict[int, dict[str, Any]] = {}
    with concurrent.futures.ProcessPoolExecutor(local_workers(len(points))) as pool:
        pending = {pool.submit(run_point, point, prices, accounts, seed): i for i, point in enumerate(points)}
        try:
            for future in concurrent.futures.as_completed(pending):
                i = pending[future]
                done[i] = {"point": i, **future.result()}
                if on_result:
                    on_result(done[i])
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
    return [done[i] for i in sorted(done)]


def _run_on_ray(ray: Any, points: list[dict[str, Any]], prices: np.ndarray, accounts: int, seed: int,
                on_result: Callable[[dict[str, Any]], None] | None) -> list[dict[str, Any]]:
    prices_ref = ray.put(prices)
    task = ray.remote(run_point)
    pending = {task.remote(point, prices_ref, accounts, seed): i for i, point in enumerate(points)}
    done: dict[int, dict[str, Any]] = {}
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            i = pending.pop(ready[0])
            done[i] = {"point": i, **ray.get(ready[0])}
            if on_result:
                on_result(done[i])
    except KeyboardInterrupt:
        for ref in pending:
            ray.cancel(ref, force=True)
    return [done[i] for i in sorted(done)]


# -- outputs ---------------------------------------------------------------------------------


def write_results(rows: list[dict[str, Any]], out_dir: str | Path) -> list[Path]:
    """``sweep.csv`` and ``sweep.parquet`` (one row per point)."""
    columns = {key: np.array([row[key] for row in rows]) for key in rows[0]}
    return write_table(columns, out_dir, "sweep")


def varied_keys(rows: list[dict[str, Any]]) -> list[str]:
    """Sweep keys taking more than one value, in :data:`PARAMS` order."""
    return [k for k in PARAMS if len({row[k] for row in rows}) > 1]


def _mean_grid(rows, x_key: str, y_key: str, metric: str):
    xs = sorted({row[x_key] for row in rows}, key=_sort_key)
    ys = sorted({row[y_key] for row in rows}, key=_sort_key)
    z = np.full((len(ys), len(xs)), np.nan)
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            vals = [row[metric] for row in rows if row[x_key] == x and row[y_key] == y]
            if vals:
                z[i, j] = float(np.mean(vals))
    return [str(x) for x in xs], [str(y) for y in ys], z


def _sort_key(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, int | float) else (1, str(value))


HEATMAP_METRICS = ("p_adl", "fund_min_mean_usdt", "bankruptcy_loss_usdt", "adl_notional_usdt")


def sweep_figure(rows: list[dict[str, Any]]):
    """Heatmaps of the headline metrics over the first two varied keys (means over the rest);
    with one varied key, one heatmap row per metric."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    keys = varied_keys(rows) or ["fund"]
    x_key = keys[0]
    y_key = keys[1] if len(keys) > 1 else None
    fig = make_subplots(rows=2, cols=2, subplot_titles=HEATMAP_METRICS, horizontal_spacing=0.15)
    for n, metric in enumerate(HEATMAP_METRICS):
        if y_key is None:
            rows_ = [{**row, "_": "all"} for row in rows]
            xs, ys, z = _mean_grid(rows_, x_key, "_", metric)
        else:
            xs, ys, z = _mean_grid(rows, x_key, y_key, metric)
        r, c = divmod(n, 2)
        fig.add_trace(go.Heatmap(x=xs, y=ys, z=z, colorbar={"x": 0.45 + 0.55 * c, "y": 0.8 - 0.6 * r,
                                                              "len": 0.4}, name=metric),
                      row=r + 1, col=c + 1)
        fig.update_xaxes(title_text=x_key, type="category", row=r + 1, col=c + 1)
        fig.update_yaxes(title_text=y_key or "", type="category", row=r + 1, col=c + 1)
    fig.update_layout(title=f"backstop sweep: {len(rows)} points", height=800)
    return fig


def write_report(rows: list[dict[str, Any]], out_dir: str | Path) -> Path:
    """``sweep.html``: the heatmaps, with plotly.js inlined so the file works offline."""
    path = Path(out_dir) / "sweep.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_figure(rows).write_html(path, include_plotlyjs=True, full_html=True)
    return path
