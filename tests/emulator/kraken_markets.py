"""The markets and assets the Kraken emulator serves, from real Kraken definitions.

Pairs come from two recordings (``data/README.md``): ccxt's unified markets
(``data/ccxt/markets/kraken.json``, MIT), whose ``info`` is Kraken's AssetPairs entry of 8 pairs
(BTC/USDT, BTC/USD, ETH/USDT, ...), and the AssetPairs reply in the cryptofeed recording
(``data/cryptofeed/KRAKEN.jsonl.zst``), of which the 10 pairs with recorded books are kept. Two
changes make the 2021 entries look like today's: ``status: "online"`` is added (ccxt marks a pair
without it inactive) and the decimal counts are integers, as Kraken sends them.

Assets (``/0/public/Assets``) are not in either recording: they are derived from the pairs'
``base``/``quote`` ids (``XXBT`` -> altname ``XBT``), 10 decimals for ``XXBT``/``XETH``, 4 for fiat
(``Z...``, ``CHF``), 8 otherwise, as Kraken lists them.
"""

from __future__ import annotations

import dataclasses
import typing as t
from decimal import Decimal

from tests.emulator.core import MarketRules
from tests.emulator.kraken_feed import Precision, Recording, v2_symbol
from tests.emulator.recordings import ccxt_markets

__all__ = ["KrakenPair", "asset_entries", "ccxt_pairs", "recorded_pairs"]

_INTEGERS = ("pair_decimals", "lot_decimals", "cost_decimals", "lot_multiplier", "margin_call", "margin_stop")
_FIAT = {"CHF", "CAD", "AUD"}


@dataclasses.dataclass(frozen=True)
class KrakenPair:
    """One pair as Kraken defines it: ``id`` is the AssetPairs key (``XXBTZUSD``), ``info`` the
    entry served, ``symbol`` ccxt's unified symbol (``BTC/USD``, also the v2 websocket name)."""

    id: str
    info: dict[str, t.Any]
    precision: Precision
    """Decimals of book prices and quantities on the wire (the recording's own where recorded)."""

    @property
    def symbol(self) -> str:
        return v2_symbol(self.info["wsname"])

    @property
    def altname(self) -> str:
        return str(self.info["altname"])

    @property
    def cost_decimals(self) -> int:
        """Decimals of an order's cost and fee (``cost_decimals``; 8 where the entry has none)."""
        return int(self.info.get("cost_decimals", 8))

    @property
    def lot_decimals(self) -> int:
        return int(self.info["lot_decimals"])

    @property
    def pair_decimals(self) -> int:
        return int(self.info["pair_decimals"])

    def rules(self) -> MarketRules:
        """The core's view: steps, minimums, the first-tier taker/maker fee, fee in quote."""
        base, quote = self.symbol.split("/")
        info = self.info
        tick = Decimal(info["tick_size"]) if "tick_size" in info else Decimal(1).scaleb(-self.pair_decimals)
        return MarketRules(
            self.symbol, self.id, base, quote,
            amount_step=Decimal(1).scaleb(-self.lot_decimals), price_step=tick,
            min_amount=Decimal(str(info.get("ordermin", 0))), min_cost=Decimal(str(info.get("costmin", 0))),
            taker_fee=Decimal(str(info["fees"][0][1])) / 100,
            maker_fee=Decimal(str(info["fees_maker"][0][1])) / 100,
            fee_side="quote", fee_precision=Decimal(1).scaleb(-self.cost_decimals), info=info)


def _today(entry: dict[str, t.Any]) -> dict[str, t.Any]:
    info = {k: int(v) if k in _INTEGERS else v for k, v in entry.items()}
    info.setdefault("status", "online")
    return info


def ccxt_pairs() -> list[KrakenPair]:
    """The 8 pairs of ccxt's recorded Kraken markets."""
    pairs = []
    for market in ccxt_markets("kraken").values():
        info = _today(market["info"])
        pairs.append(KrakenPair(market["id"], info, Precision(info["pair_decimals"], info["lot_decimals"])))
    return pairs


def recorded_pairs(recording: Recording) -> list[KrakenPair]:
    """The pairs whose books the cryptofeed recording holds, with the recorded wire decimals."""
    pairs = []
    for pair_id, entry in recording.asset_pairs.items():
        symbol = v2_symbol(entry.get("wsname", ""))
        if symbol in recording.precision:
            pairs.append(KrakenPair(pair_id, _today(entry), recording.precision[symbol]))
    return pairs


def asset_entries(pairs: t.Iterable[KrakenPair]) -> dict[str, dict[str, t.Any]]:
    """``/0/public/Assets`` entries for every asset the pairs trade."""
    assets: dict[str, dict[str, t.Any]] = {}
    for pair in pairs:
        for asset in (pair.info["base"], pair.info["quote"]):
            x_or_z = len(asset) == 4 and asset[0] in "XZ"
            altname = asset[1:] if x_or_z else asset
            fiat = (asset.startswith("Z") and x_or_z) or asset in _FIAT
            decimals = 10 if asset in ("XXBT", "XETH") else 4 if fiat else 8
            assets[asset] = {"aclass": "currency", "altname": altname, "decimals": decimals,
                             "display_decimals": 2 if fiat else 5, "status": "enabled"}
    return dict(sorted(assets.items()))
