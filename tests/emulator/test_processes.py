"""``tests.emulator.processes``: emulators in their own processes are reaped however the test ends."""

from __future__ import annotations

import urllib.error

import pytest

from tests.emulator.processes import control, emulators


def test_an_emulator_process_serves_its_url_and_is_gone_after_a_failing_body():
    with pytest.raises(ValueError, match="the test failed"), \
            emulators(("binance", "--scenario", "quiet")) as [url]:
        assert url.startswith("http://127.0.0.1:")
        assert control(url, "balances", {"USDT": "5"}) is not None
        raise ValueError("the test failed")
    with pytest.raises(urllib.error.URLError):  # killed and waited for: nothing listens there now
        control(url, "state")


def test_an_emulator_that_exits_before_printing_its_url_is_an_error_naming_it():
    with pytest.raises(RuntimeError, match=r"tests.emulator kraken --no-such-option exited with 2"), \
            emulators(("kraken", "--no-such-option")):
        pass
