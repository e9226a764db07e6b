"""Keys come from ARB_<EXCHANGE>_* variables and never show their values."""

from __future__ import annotations

import pickle

import pytest

from arbitrage.exchanges.keys import Keys, env_names, keys_from_env

SECRET = "s3cr3t-Zq9-planted"
API_KEY = "k3y-Xw7-planted"


def test_keys_are_read_from_the_exchange_s_variables_stripped() -> None:
    env = {"ARB_BINANCE_API_KEY": f" {API_KEY}\n", "ARB_BINANCE_SECRET": SECRET, "ARB_KRAKEN_SECRET": "x"}
    keys = keys_from_env("binance", env)
    assert keys is not None and keys.complete
    assert (keys.api_key, keys.secret, keys.password) == (API_KEY, SECRET, "")
    assert keys.ccxt_config() == {"apiKey": API_KEY, "secret": SECRET}
    kraken = keys_from_env("kraken", env)
    assert kraken is not None and not kraken.complete  # a half-set pair is returned, and says so
    assert keys_from_env("coinbase", env) is None
    assert env_names("gate-io") == ("ARB_GATE_IO_API_KEY", "ARB_GATE_IO_SECRET", "ARB_GATE_IO_PASSWORD")


def test_a_password_is_passed_to_ccxt_when_set() -> None:
    keys = keys_from_env("okx", {"ARB_OKX_API_KEY": "a", "ARB_OKX_SECRET": "b", "ARB_OKX_PASSWORD": "c"})
    assert keys is not None and keys.ccxt_config() == {"apiKey": "a", "secret": "b", "password": "c"}


def test_repr_str_and_formatting_show_which_parts_are_set_never_the_values() -> None:
    keys = Keys("binance", API_KEY, SECRET)
    for text in (repr(keys), str(keys), f"{keys}", f"{keys!r}", repr([keys]), repr({"k": keys})):
        assert SECRET not in text and API_KEY not in text
    assert repr(keys) == "Keys(binance, api_key=***, secret=***, password=-)"
    with pytest.raises(TypeError):
        pickle.dumps(keys)
