"""The kill switch: rules that halt new trading, and the halt file another terminal can write.

Rules, evaluated on every ``ArbResult`` and ``PositionUpdate`` (so a halt lands before the next
opportunity, and a held position whose mark falls trips it too):

=============  ===============================================================================
rule           trips when
=============  ===============================================================================
daily_loss     net PnL over the current UTC day (run clock), every quote currency valued in
               the risk currency (``risk.currency``, from the run's books), is at or below
               ``-monitor.daily_loss_limit``: the day's realized profit plus how much the open
               positions' value less cost (and what reducing them realized) moved since the
               day began
failed_arbs    ``monitor.max_failed_arbs`` arbitrages in a row ended ``failed``
residual       the unhedged position of an asset, summed over the run, exceeds
               ``monitor.max_residual[asset]`` in absolute value
halt_file      the file ``monitor.halt_file`` exists (``arb halt`` writes it)
=============  ===============================================================================

A rule that trips also writes the halt file, so a restarted engine stays halted and ``arb resume``
(which removes the file) is the one way to lift any halt. Resuming resets the failure streak; the
daily loss and residual rules see the same figures as before, so they trip again on the next
result unless the limit was raised (or, for the daily loss, a new UTC day began).
"""

from __future__ import annotations

import datetime as dt
import os
import typing as t
from collections import defaultdict
from pathlib import Path

from arbitrage.events import ArbResult, PositionUpdate
from arbitrage.settings import MonitorSettings

Value = t.Callable[[str, float], "float | None"]
"""An amount of an asset in the risk currency, None when it cannot be priced (``Valuer.value``)."""

_DAY_NS = 86_400 * 1_000_000_000


class Trip(t.NamedTuple):
    """A rule that tripped and why, in words for the trader."""

    rule: str
    reason: str


def utc_day(ts_ns: int) -> str:
    """The UTC date of a nanosecond timestamp, as ``YYYY-MM-DD``."""
    return dt.datetime.fromtimestamp(ts_ns / 1e9, dt.UTC).date().isoformat()


def read_halt(path: str | os.PathLike[str]) -> str | None:
    """The reason written in the halt file, '' if it is empty, None if there is no halt file."""
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None


def write_halt(path: str | os.PathLike[str], reason: str) -> None:
    """Create (or replace) the halt file with ``reason``, creating its directory.

    :raises OSError: if the file cannot be written.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(reason.strip() + "\n", encoding="utf-8")
    tmp.replace(target)  # atomic: a reader never sees a half-written reason


def clear_halt(path: str | os.PathLike[str]) -> str | None:
    """Remove the halt file; return the reason it held, or None if there was none."""
    reason = read_halt(path)
    try:
        Path(path).unlink()
    except FileNotFoundError:
        return None
    return reason


class KillSwitch:
    """The figures the halt rules need, and the rules themselves. No I/O, no clock: pure bookkeeping."""

    def __init__(self, settings: MonitorSettings, value: Value | None = None, currency: str = "USDT") -> None:
        """
        :param value: values PnL of each quote currency in ``currency`` (default: only ``currency``
            itself is known); a quote it cannot price keeps the last rate it had.
        """
        self.settings = settings
        self._loss_limit = settings.daily_loss_limit
        self._value = value or (lambda asset, amount: amount if asset == currency else None)
        self.currency = currency
        self._rates: dict[str, float] = {currency: 1.0}
        """The last rate each quote currency was valued at."""
        self._residual_limits = sorted(settings.max_residual.items())
        self._max_failed = settings.max_failed_arbs
        self.day = ""
        """The UTC day ``daily_pnl`` covers."""
        self._day_ns = (0, -1)
        self.daily_pnl: dict[str, float] = defaultdict(float)
        """Realized PnL of the arbitrages per quote currency since the start of ``day``."""
        self._positions: dict[tuple[str, str, str], tuple[str, float]] = {}
        """(venue, asset, quote) -> (quote, realized + unrealized) of its newest update."""
        self._day_start: dict[tuple[str, str, str], float] = {}
        """The same figure of each position when ``day`` began."""
        self.failed_streak = 0
        """Arbitrages in a row that ended ``failed``."""
        self.residual: dict[str, float] = defaultdict(float)
        """Unhedged position per asset, summed over the run's results."""

    def roll(self, ts_ns: int) -> str | None:
        """Start a new day if ``ts_ns`` falls after ``day``; return the day that ended, if any."""
        start, end = self._day_ns
        if start <= ts_ns < end:
            return None
        day = utc_day(ts_ns)
        self._day_ns = (ts_ns - ts_ns % _DAY_NS, ts_ns - ts_ns % _DAY_NS + _DAY_NS)
        if day == self.day:
            return None
        ended, self.day = self.day, day
        self.daily_pnl.clear()
        self._day_start = {key: value for key, (_, value) in self._positions.items()}
        return ended or None

    @property
    def daily_net(self) -> dict[str, float]:
        """Net PnL per quote currency since the start of ``day``: ``daily_pnl`` plus the change of
        the positions' realized + unrealized figure since then."""
        out = dict(self.daily_pnl)
        for key, (quote, value) in self._positions.items():
            out[quote] = out.get(quote, 0.0) + value - self._day_start.get(key, 0.0)
        return out

    def daily_net_value(self) -> tuple[float, list[str]]:
        """``daily_net`` summed in the risk currency, and the quotes never priced (left out)."""
        total = 0.0
        unpriced: list[str] = []
        for quote, pnl in sorted(self.daily_net.items()):
            value = self._value(quote, 1.0)
            if value is not None and value > 0.0:
                self._rates[quote] = value
            rate = self._rates.get(quote)
            if rate is None:
                unpriced.append(quote)
            else:
                total += pnl * rate
        return total, unpriced

    def on_result(self, result: ArbResult, ts_ns: int) -> Trip | None:
        """Account for one finished arbitrage and return the first rule it trips, if any."""
        self.roll(ts_ns)
        self.daily_pnl[result.quote] += result.realized_profit
        self.failed_streak = self.failed_streak + 1 if result.status == "failed" else 0
        for asset, amount in result.residual.items():
            self.residual[asset] += amount
        return self.check()

    def on_position(self, update: PositionUpdate, ts_ns: int) -> Trip | None:
        """Account for a position's new amount, cost or mark and return the first rule it trips."""
        self.roll(ts_ns)
        p = update.position
        self._positions[(p.venue, p.asset, p.quote)] = (p.quote, update.realized + p.unrealized)
        return self.check()

    def check(self) -> Trip | None:
        """The first rule the current figures break, or None."""
        if self._loss_limit > 0.0:
            pnl, unpriced = self.daily_net_value()
            if pnl <= -self._loss_limit:
                extra = f"; not priced: {', '.join(unpriced)}" if unpriced else ""
                return Trip("daily_loss", f"daily net loss {-pnl:.8g} {self.currency} (open positions "
                                          f"marked, every quote valued in {self.currency}{extra}) reached "
                                          f"the limit {self._loss_limit:.8g} {self.currency}")
        if self._max_failed and self.failed_streak >= self._max_failed:
            return Trip("failed_arbs", f"{self.failed_streak} arbitrages in a row failed "
                                       f"(max_failed_arbs={self._max_failed})")
        for asset, limit in self._residual_limits:
            amount = self.residual.get(asset, 0.0)
            if abs(amount) > limit:
                return Trip("residual", f"residual {asset} exposure {amount:+.8g} exceeds {limit:.8g}")
        return None

    def reset_streak(self) -> None:
        """Forget the failure streak (on resume)."""
        self.failed_streak = 0
