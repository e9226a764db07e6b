"""``arb scan --exchange``: live books from the emulators (subprocesses), the strategies' own
scanners, profits worked out by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.exchanges import emulated
from tests.exchanges.emulated import arb

BINANCE_FEE = 0.001
"""Binance taker fee of every emulated market (tests/emulator/binance.py)."""
KRAKEN_FEE = 0.0026
"""Kraken's first-tier taker fee in the recorded pairs (tests/emulator/kraken.py)."""


def test_cross_exchange_finds_a_planted_dislocation_and_counts_bad_books(tmp_path: Path) -> None:
    with emulated.binance() as binance, emulated.kraken() as kraken:
        emulated.plant(binance, "BTC/USDT", bids=[("49990", "1")], asks=[("50000", "0.2")])
        emulated.plant(kraken, "BTC/USDT", bids=[("50500", "0.1")], asks=[("50600", "1")])
        emulated.plant(kraken, "LTC/USDT", bids=[("101", "1")], asks=[("100", "1")])  # crossed
        # ETH/USDT has no levels anywhere: empty; XRP/USD is not listed on Binance.
        args = ("scan", "--exchange", "binance", "--exchange", "kraken", "--strategy", "cross_exchange",
                "--exchange-url", f"binance={binance}", "--exchange-url", f"kraken={kraken}",
                "--symbols", "BTC/USDT,ETH/USDT,LTC/USDT,XRP/USD")
        result = arb(*args, "--json", cwd=tmp_path)
        human = arb(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["books"] == 2
    assert out["skipped"] == {"binance": {"ETH/USDT": "empty", "LTC/USDT": "empty"},
                              "kraken": {"ETH/USDT": "empty", "LTC/USDT": "crossed", "XRP/USD": "empty"}}
    assert out["missing"] == {"binance": {"XRP/USD": "not listed"}}
    [found] = out["opportunities"]
    # Buy on Binance at 50000, sell on Kraken at 50500. Size: strategy.max_notional 1000 USDT at
    # 50000 = 0.02 BTC bought (below both books' 0.2 and 0.1). Binance takes its 0.1 % from the
    # BTC received (fee side "get"): 0.02 * 0.999 = 0.01998 BTC arrive and are sold; Kraken takes
    # its 0.26 % in USDT. Proceeds 0.01998 * 50500 * 0.9974 = 1006.366626 USDT for 1000 spent:
    # profit 6.366626 USDT, 63.66626 bps of the 1000.
    assert found["venue"] == "binance->kraken"
    assert [(leg["venue"], leg["side"], leg["amount"], leg["price"]) for leg in found["legs"]] == [
        ("binance", "buy", pytest.approx(0.02), 50000.0), ("kraken", "sell", pytest.approx(0.01998), 50500.0)]
    assert [leg["fee_rate"] for leg in found["legs"]] == [BINANCE_FEE, KRAKEN_FEE]
    assert found["amount"] == pytest.approx(1000.0)
    assert found["received"] == pytest.approx(1006.366626, abs=1e-9)
    assert found["profit"] == pytest.approx(6.366626, abs=1e-9)
    assert found["profit_bps"] == pytest.approx(63.66626, abs=1e-9)
    assert human.returncode == 0, human.stderr
    title = " ".join(human.stdout.split())
    assert "1 opportunities in 2 books" in title and "5 books skipped" in title
    assert "kraken LTC/USDT: skipped: crossed" in human.stderr


def test_triangular_finds_a_planted_cycle_on_one_venue(tmp_path: Path) -> None:
    with emulated.kraken() as kraken:
        emulated.plant(kraken, "BTC/USDT", bids=[("49990", "10")], asks=[("50000", "10")])
        emulated.plant(kraken, "ADA/BTC", bids=[("0.0000099", "1000000")], asks=[("0.00001", "1000000")])
        emulated.plant(kraken, "ADA/USDT", bids=[("0.52", "1000")], asks=[("0.53", "1000000")])
        result = arb("scan", "--exchange", "kraken", "--exchange-url", f"kraken={kraken}",
                     "--symbols", "BTC/USDT,ADA/BTC,ADA/USDT", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert (out["books"], out["skipped"], out["missing"]) == (3, {}, {})
    [found] = out["opportunities"]
    # USDT -> BTC -> ADA -> USDT. The ADA/USDT bid (1000 ADA) binds. 1000 ADA at 0.00001 BTC plus
    # the 0.26 % fee (charged on top, in the quote) cost 0.010026 BTC; those at 50000 plus the fee
    # cost 0.010026 * 50000 * 1.0026 = 502.60338 USDT. 1000 ADA sell for 1000 * 0.52 * 0.9974
    # = 518.648 USDT: profit 16.04462 USDT, 319.23 bps of 502.60338. (The sizing's float division,
    # rounded down to the 1e-8 lot step, leaves the ADA amount one step short of 1000: 5e-9 USDT.)
    assert found["assets"] == ["USDT", "BTC", "ADA", "USDT"]
    assert [(leg["symbol"], leg["side"]) for leg in found["legs"]] == [
        ("BTC/USDT", "buy"), ("ADA/BTC", "buy"), ("ADA/USDT", "sell")]
    assert found["legs"][0]["amount"] == pytest.approx(0.010026, abs=1e-12)
    assert found["legs"][2]["amount"] == pytest.approx(1000.0, abs=1.5e-8)
    assert found["amount"] == pytest.approx(502.60338, abs=1e-6)
    assert found["received"] == pytest.approx(518.648, abs=1e-6)
    assert found["profit"] == pytest.approx(16.04462, abs=1e-6)
    assert found["profit_bps"] == pytest.approx(16.04462 / 502.60338 * 1e4, abs=1e-4)


def test_an_unreachable_exchange_is_one_line_and_exit_1(tmp_path: Path) -> None:
    from tests.exchanges.test_check import closed_port

    result = arb("scan", "--exchange", "binance", "--exchange-url", f"binance=http://127.0.0.1:{closed_port()}",
                 "--symbols", "BTC/USDT", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("binance: unreachable: ExchangeNotAvailable: ")
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr


@pytest.mark.parametrize(("args", "key"), [
    (("--exchange", "binance", "--strategy", "cross_exchange", "--symbols", "BTC/USDT"), "--exchange"),
    (("--exchange", "binance"), "--symbols"),
    (("--exchange", "binance", "--data", "x.csv"), "--data"),
    (("--strategy", "nope", "--data", "x.csv"), "--strategy"),
])
def test_bad_live_scan_settings_exit_2(args: tuple[str, ...], key: str, tmp_path: Path) -> None:
    result = arb("scan", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"settings error: {key}: ")
