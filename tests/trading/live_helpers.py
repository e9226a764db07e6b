"""Live venues on the loopback emulators: the real ccxt async client, URLs moved under the emulator.

``emulated(venue)`` serves one emulator in the running loop and yields a ``Live`` with its state
(``exchange``: the ``EmulatedExchange`` ledger), and ``live.venue(...)`` builds a ``LiveVenue``
on a ccxt instance pointed at it. Waits are short (``FAST``) so a lookup window costs tenths of a
second; nothing is timed against a deadline.
"""

from __future__ import annotations

import base64
import collections.abc as c
import contextlib
import dataclasses
import typing as t

import ccxt.async_support as ccxt
from loguru import logger

from arbitrage.clock import Clock
from arbitrage.exchanges.client import NONCE_ORDERED, increasing_nonce
from arbitrage.exchanges.markets import to_market
from arbitrage.exchanges.urls import rewrite_urls
from arbitrage.settings import LiveSettings
from arbitrage.trading.ids import client_order_id
from arbitrage.trading.live import LiveVenue
from arbitrage.trading.venue import OrderRequest
from tests.emulator.core import EmulatedExchange
from tests.emulator.server import Emulator, serve

KEY = "arbTESTkey-0a1b2c3d4e5f"
SECRET = base64.b64encode(b"arb-test-secret-" * 4).decode()
OTHER_KEY = "arbTESTkey-other-9f8e7d"
"""A second Kraken key of the same account, for a second client (a person, another process)."""

FAST = LiveSettings(lookup_retries=3, lookup_backoff_s=0.02, order_deadline_s=1.0, not_found_after_s=1.2,
                    unknown_retry_s=0.05, cancel_after_s=0.05)
"""Lookups a few hundredths of a second apart; an order deadline of 1 s (a loaded test machine
never delays an order that long; built directly: Kraken's 2 s floor applies to settings files
only), a not-found window of 1.2 s after it."""


def kraken_emulator(key: str = KEY, secret: str = SECRET) -> Emulator:
    """Kraken with ccxt's 8 recorded pairs (BTC/USDT among them); books are planted by the tests."""
    from tests.emulator.kraken import KrakenEmulator
    from tests.emulator.kraken_markets import ccxt_pairs

    return KrakenEmulator(ccxt_pairs(), {key: secret, OTHER_KEY: secret})


def binance_emulator(key: str = KEY, secret: str = SECRET) -> Emulator:
    """Binance with the recorded spot markets (BTC/USDT among them); books are planted by the tests."""
    from tests.emulator.binance import BinanceEmulator

    return BinanceEmulator(api_key=key, secret=secret)


EMULATORS: dict[str, c.Callable[..., Emulator]] = {"binance": binance_emulator, "kraken": kraken_emulator}
"""Emulated exchanges by ccxt id."""


@dataclasses.dataclass
class Live:
    """One emulated exchange being served: its ledger and the URL ccxt is pointed at."""

    name: str
    emulator: Emulator
    base_url: str
    instances: list[t.Any] = dataclasses.field(default_factory=list)

    @property
    def exchange(self) -> EmulatedExchange:
        return self.emulator.exchange

    def client(self, *, key: str = KEY, secret: str = SECRET, timeout_ms: int = 10_000) -> t.Any:
        """A ccxt async instance of this exchange pointed at the emulator (closed on exit)."""
        options = {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False, "fetchMargins": False} \
            if self.name == "binance" else {}
        config = {"apiKey": key, "secret": secret, "enableRateLimit": False, "timeout": timeout_ms,
                  "options": options}
        if self.name in NONCE_ORDERED:  # as create_exchange makes it
            config["nonce"] = increasing_nonce()
        instance = getattr(ccxt, self.name)(config)
        instance.urls["api"] = rewrite_urls(instance.urls["api"], self.base_url)
        self.instances.append(instance)
        return instance

    def other_client(self) -> t.Any:
        """A second client on the same account, as another process or a person would use. On
        Kraken it has its own key: two clients sharing one race for its nonce (milliseconds, which
        Kraken needs above the key's last), and the one that loses the race is refused."""
        return self.client(key=OTHER_KEY) if self.name == "kraken" else self.client()

    async def venue(self, *, name: str | None = None, settings: LiveSettings = FAST, timeout_ms: int = 10_000,
                    symbols: c.Iterable[str] = ("BTC/USDT",), ioc: bool = True,
                    budget: t.Any = None) -> LiveVenue:
        """A started ``LiveVenue`` (markets loaded, balances read) on a fresh ccxt instance;
        ``ioc=False`` makes ccxt's features deny IOC orders, as on an exchange without them;
        ``budget`` its request budget (none by default)."""
        client = self.client(timeout_ms=timeout_ms)
        await client.load_markets()
        if not ioc:
            client.features["spot"]["createOrder"]["timeInForce"]["IOC"] = False
        markets = [to_market(client.markets[s], client.precisionMode) for s in symbols]
        venue = LiveVenue(name or self.name, client, clock=Clock(), markets=markets, settings=settings,
                          log=logger, budget=budget)
        await venue.start()
        return venue

    def orders_with(self, client_id: str) -> list[t.Any]:
        """Every order the emulator accepted carrying ``client_id``."""
        return [o for o in self.exchange.orders.values() if o.client_order_id == client_id]

    def count(self, endpoint: str) -> int:
        return sum(1 for e in self.exchange.endpoints() if e == endpoint)


@contextlib.asynccontextmanager
async def emulated(name: str) -> c.AsyncIterator[Live]:
    """Serve the ``name`` emulator in this loop; close every ccxt instance made from it on exit."""
    emulator = EMULATORS[name]()
    async with serve(emulator) as base_url:
        live = Live(name, emulator, base_url)
        try:
            yield live
        finally:
            for instance in live.instances:
                await instance.close()


def request(label: str, venue: str, side: t.Literal["buy", "sell"], amount: float, price: float,
            symbol: str = "BTC/USDT") -> OrderRequest:
    opportunity_id, _, _ = label.rpartition("-")
    return OrderRequest(client_order_id=client_order_id(label), label=label, opportunity_id=opportunity_id,
                        venue=venue, symbol=symbol, side=side, amount=amount, price=price)
