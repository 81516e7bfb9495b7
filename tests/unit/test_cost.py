import pytest

from services.commands.cost_estimate import GB, Usage, estimate, read_prices
from services.common.config import EnvReader

PRICES = read_prices(EnvReader({}))
# 4 cameras at 2 Mbit/s, 10-minute segments.
USAGE = Usage(bytes_per_day=4 * 250_000 * 86400, segments_per_day=4 * 144, parts_per_segment=0)


def amounts(result):
    return {label.split(" ")[0] + " " + label.split(" ")[1]: amount for label, amount in result.lines}


def test_steady_state_with_transition_and_expiry():
    result = estimate(USAGE, PRICES, "STANDARD", 30, "GLACIER_IR", 365)
    gb_day = USAGE.bytes_per_day / GB
    assert result.stored_gb["STANDARD"] == pytest.approx(30 * gb_day)
    assert result.stored_gb["GLACIER_IR"] == pytest.approx(335 * gb_day)
    assert amounts(result)["storage STANDARD"] == pytest.approx(30 * gb_day * 0.023)
    assert amounts(result)["upload requests"] == pytest.approx(4 * 144 * 30.4 / 1000 * 0.005)


def test_expiry_before_transition_keeps_everything_hot():
    result = estimate(USAGE, PRICES, "STANDARD", 0, "GLACIER_IR", 7)
    assert list(result.stored_gb) == ["STANDARD"]
    assert result.stored_gb["STANDARD"] == pytest.approx(7 * USAGE.bytes_per_day / GB)


def test_prices_can_be_overridden():
    prices = read_prices(EnvReader({"COST_PRICE_STANDARD_GB_MONTH": "0.01", "COST_INSTANCE_MONTHLY": "5"}))
    result = estimate(USAGE, prices, "STANDARD", 0, "GLACIER_IR", 30)
    assert ("recording host", 5.0) in result.lines
    assert amounts(result)["storage STANDARD"] == pytest.approx(30 * USAGE.bytes_per_day / GB * 0.01)
