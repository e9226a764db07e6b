"""The fault-injection suite: the whole engine against the Binance and Kraken emulators, one fault
scenario per test, every one ending by the same end-state checks (``harness.assert_end_state``)."""
