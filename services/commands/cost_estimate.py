"""`cost`: a monthly estimate from the bitrate actually recorded and the configured retention (pure).

Prices are inputs, not facts about your account: the defaults are AWS S3 us-east-1 list
prices (USD) and every one can be overridden in .env (COST_PRICE_<CLASS>_GB_MONTH ...).
"""
from __future__ import annotations

from dataclasses import dataclass

from services.common.config import EnvReader
from services.common.settings import COST_INSTANCE_MONTHLY, COST_PRICE_GB_MONTH, COST_PRICE_PUT_PER_1000

DAYS_PER_MONTH = 30.4
GB = 1024**3
# USD per 1,000 lifecycle transitions (the storage and PUT prices are settings).
DEFAULT_TRANSITION_PER_1000 = {"GLACIER_IR": 0.02, "GLACIER": 0.03, "DEEP_ARCHIVE": 0.05,
                               "STANDARD_IA": 0.01, "ONEZONE_IA": 0.01, "INTELLIGENT_TIERING": 0.01}


@dataclass(frozen=True)
class Prices:
    storage: dict[str, float]
    put_per_1000: float
    transition_per_1000: dict[str, float]
    instance_per_month: float


@dataclass(frozen=True)
class Usage:
    bytes_per_day: float
    segments_per_day: float
    parts_per_segment: float


@dataclass(frozen=True)
class Estimate:
    lines: tuple[tuple[str, float], ...]
    stored_gb: dict[str, float]

    @property
    def total(self) -> float:
        return sum(amount for _, amount in self.lines)


def read_prices(env: EnvReader) -> Prices:
    storage = {cls: env.get(setting) for cls, setting in COST_PRICE_GB_MONTH.items()}
    return Prices(storage, env.get(COST_PRICE_PUT_PER_1000), dict(DEFAULT_TRANSITION_PER_1000),
                  env.get(COST_INSTANCE_MONTHLY))


def estimate(usage: Usage, prices: Prices, storage_class: str, transition_days: int, transition_class: str,
             expire_days: int) -> Estimate:
    """Steady state: each class holds (days spent in it) x (bytes per day)."""
    gb_per_day = usage.bytes_per_day / GB
    if expire_days and (not transition_days or transition_days >= expire_days):
        hot_days, cold_days = expire_days, 0
    elif transition_days:
        hot_days = transition_days
        cold_days = (expire_days - transition_days) if expire_days else None  # None: grows for ever
    else:
        hot_days, cold_days = None, 0
    stored: dict[str, float] = {}
    lines: list[tuple[str, float]] = []
    months_note = "after one year" if hot_days is None or cold_days is None else "steady state"
    year = 365
    hot_gb = gb_per_day * (hot_days if hot_days is not None else year)
    stored[storage_class] = hot_gb
    lines.append((f"storage {storage_class} {hot_gb:,.0f} GB ({months_note})", hot_gb * prices.storage[storage_class]))
    if transition_days and (cold_days is None or cold_days > 0):
        cold_gb = gb_per_day * (cold_days if cold_days is not None else max(0, year - transition_days))
        stored[transition_class] = cold_gb
        lines.append((f"storage {transition_class} {cold_gb:,.0f} GB ({months_note})",
                      cold_gb * prices.storage[transition_class]))
        transitions = usage.segments_per_day * DAYS_PER_MONTH
        lines.append((f"lifecycle transitions {transitions:,.0f}/month",
                      transitions / 1000 * prices.transition_per_1000.get(transition_class, 0.0)))
    puts = usage.segments_per_day * DAYS_PER_MONTH * (usage.parts_per_segment + 1)
    lines.append((f"upload requests {puts:,.0f}/month", puts / 1000 * prices.put_per_1000))
    if prices.instance_per_month:
        lines.append(("recording host", prices.instance_per_month))
    return Estimate(tuple(lines), stored)
