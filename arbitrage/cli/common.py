"""What every ``arb`` command shares: loading settings from flags, one-line errors, exit codes,
common options.

``ArbError`` becomes one line on stderr and its exit code; settings errors exit 2. Every command
runs inside ``guarded`` (``arbitrage.cli`` registers them so), which does that for an error a
command did not catch itself and turns Ctrl-C into exit 130; a run stopped cleanly by SIGINT or
SIGTERM exits 128 + the signal's number too (``exit_for``), as shells expect. Only light modules
are imported here, so ``arb --help`` answers at once.
"""

from __future__ import annotations

import collections.abc as c
import functools
import os
import signal
import sys
import typing as t
from pathlib import Path

import typer

from arbitrage.errors import ArbError, SettingsError

if t.TYPE_CHECKING:
    from arbitrage.settings import Settings


INTERRUPTED = 128 + signal.SIGINT
"""Exit code after Ctrl-C (130)."""
_warned: set[str] = set()
"""Environment variables already warned about in this process."""


def fail(error: ArbError) -> t.NoReturn:
    """Print one line for an expected error and exit with its code."""
    prefix = "settings error" if isinstance(error, SettingsError) else "error"
    typer.echo(f"{prefix}: {error}", err=True)
    raise typer.Exit(error.exit_code)


F = t.TypeVar("F", bound=t.Callable[..., t.Any])


def guarded(command: F) -> F:
    """``command`` with an ``ArbError`` it let through printed as one line (its exit code) and
    Ctrl-C (outside a run, which stops cleanly on its own) as exit 130 without a traceback."""

    @functools.wraps(command)
    def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
        try:
            return command(*args, **kwargs)
        except ArbError as exc:
            fail(exc)
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(INTERRUPTED) from None

    return t.cast(F, wrapper)


def exit_for(stop_reason: str) -> None:
    """Exit 128 + N when a run stopped on signal N (``signal SIGINT`` -> 130), as shells expect of a
    command ended by Ctrl-C; otherwise return."""
    name = stop_reason.removeprefix("signal ")
    if name != stop_reason and name in signal.Signals.__members__:
        raise typer.Exit(128 + signal.Signals[name].value)


def warn_stray_env(environ: t.Mapping[str, str] | None = None) -> None:
    """One line on stderr, once per process, for each ``ARB_`` variable that sets nothing."""
    from arbitrage.settings import stray_env

    for name, meant in stray_env(os.environ if environ is None else environ):
        if name in _warned:
            continue
        _warned.add(name)
        hint = f"did you mean {meant}?" if meant else "settings are ARB_SECTION__KEY, e.g. ARB_RUN__SEED"
        print(f"warning: environment variable {name} matches no setting and is ignored ({hint})",
              file=sys.stderr)


def parse_balances(items: list[str]) -> dict[str, float]:
    """``["USDT=5000", "BTC=0.1"]`` -> ``{"USDT": 5000.0, "BTC": 0.1}``.

    :raises SettingsError: naming the bad item.
    """
    out: dict[str, float] = {}
    for item in items:
        asset, sep, amount = item.partition("=")
        try:
            value = float(amount)
        except ValueError:
            value = -1.0
        if not sep or not asset.strip() or value < 0:
            raise SettingsError("--paper-balance", f"expected ASSET=AMOUNT with AMOUNT >= 0, got {item!r}")
        out[asset.strip().upper()] = value
    return out


def _names(value: str | list[str]) -> list[str]:
    """``"binance, kraken"`` (or the repeated option's items) -> ``["binance", "kraken"]``."""
    items = [value] if isinstance(value, str) else value
    return [name.strip() for item in items for name in item.split(",") if name.strip()]


def build_overrides(**flags: t.Any) -> dict[str, t.Any]:
    """Turn command-line flags (None = not given) into a nested settings override.

    ``exchanges`` and ``symbols`` are comma-separated lists; ``exchange_url`` items are
    ``NAME=BASE`` (added to the file's ``ccxt.urls``). :raises SettingsError: naming
    ``--exchange-url`` for an item that is not ``NAME=BASE``.
    """
    mapping = {
        "strategy": ("run", "strategy"), "source": ("run", "source"), "duration": ("run", "duration"),
        "seed": ("run", "seed"), "db": ("storage", "path"), "min_profit_bps": ("strategy", "min_profit_bps"),
        "max_notional": ("strategy", "max_notional"), "level": ("log", "level"),
        "max_legs": ("strategy", "max_legs"), "sequential_legs": ("trading", "sequential_legs"),
        "metrics_port": ("monitor", "metrics_port"), "rest": ("ccxt", "rest"),
    }
    out: dict[str, t.Any] = {}
    for flag, value in flags.items():
        if value is None or flag not in mapping:
            continue
        section, key = mapping[flag]
        out.setdefault(section, {})[key] = str(value) if isinstance(value, Path) else value
    if flags.get("exchanges"):
        out.setdefault("ccxt", {})["exchanges"] = [name.lower() for name in _names(flags["exchanges"])]
    if flags.get("symbols"):
        out.setdefault("ccxt", {})["symbols"] = _names(flags["symbols"])
    if flags.get("exchange_url"):
        from arbitrage.exchanges.urls import parse_exchange_url

        out.setdefault("ccxt", {})["urls"] = dict(parse_exchange_url(item) for item in flags["exchange_url"])
    if flags.get("max_notional") is not None:  # one flag sets both the sizing cap and the risk limit
        out.setdefault("trading", {})["max_notional"] = flags["max_notional"]
    return out


def load(config: Path | None, overrides: dict[str, t.Any], paper_balance: list[str] | None = None,
         profile: str | None = None) -> Settings:
    """Load settings with the layering rules, applying ``--paper-balance`` on top of the file's.

    :param profile: ``--profile NAME``: ``profiles/NAME.toml`` between the file and the environment.
    """
    from arbitrage.settings import load_settings

    warn_stray_env()
    try:
        settings = load_settings(config, overrides, profile=profile)
        if paper_balance:
            extra = parse_balances(paper_balance)
            merged = {**settings.paper.balances, **extra}
            settings = load_settings(config, {**overrides, "paper": {"balances": merged}}, profile=profile)
    except ArbError as exc:
        fail(exc)
    return settings


def refuse_live(settings: Settings, live: bool = False) -> None:
    """Backtests and optimizations replay recordings on paper venues: ``--live`` / ``run.live`` is
    refused before anything starts (exit 2). ``arb run`` passes ``live_gate`` instead."""
    if live or settings.run.live:
        fail(SettingsError("--live", "backtests and optimizations trade on paper only; "
                                     "real orders need `arb run --source ccxt --live`"))


def live_gate(settings: Settings, *, live: bool, yes: bool, environ: c.Mapping[str, str] | None = None,
              interactive: bool | None = None) -> Settings:
    """The one gate of real orders, before anything starts: returns the settings to run with.

    Without ``--live`` (or ``run.live``) nothing happens: paper trading on the source's data. With
    it: the source must be ``ccxt``, every exchange of ``ccxt.exchanges`` needs its keys in the
    environment (``ARB_<EXCHANGE>_API_KEY``, ``_SECRET``, and ``_PASSWORD`` where ccxt requires
    one); their values are registered with ``arbitrage.redact`` so that no log line, stored row or
    notification shows them. A red warning names the exchanges; the operator confirms unless
    ``--yes``; with no terminal to ask on and no ``--yes``, it refuses. Every refusal is one line on
    stderr and exit 2.

    :param interactive: whether stdin is a terminal (default: ask ``sys.stdin.isatty()``).
    """
    if not (live or settings.run.live):
        return settings
    import msgspec

    if settings.run.source != "ccxt":
        fail(SettingsError("--live", f"real orders need --source ccxt (the {settings.run.source} source "
                                     "has no exchange to trade on)"))
    exchanges = list(settings.ccxt.exchanges)
    if not exchanges:
        fail(SettingsError("--exchanges", "--live needs at least one exchange"))
    from arbitrage.exchanges.keys import Keys, env_names, keys_from_env
    from arbitrage.redact import register_secret

    environ = os.environ if environ is None else environ
    for name in exchanges:
        keys = keys_from_env(name, environ) or Keys(name, "", "")
        key_var, secret_var, password_var = env_names(name)
        for var, value in ((key_var, keys.api_key), (secret_var, keys.secret),
                           (password_var, keys.password or not _needs_password(name))):
            if not value:
                fail(SettingsError(var, f"not set: --live needs the {name} API keys in the environment"))
        for secret in (keys.api_key, keys.secret, keys.password):
            register_secret(secret)
    from rich.console import Console

    Console(stderr=True, highlight=False).print(
        f"[bold red]LIVE TRADING: arb will send real orders with real money on {', '.join(exchanges)}.[/]")
    if not yes:
        if not (sys.stdin.isatty() if interactive is None else interactive):
            fail(SettingsError("--yes", "live trading needs a confirmation and there is no terminal to "
                                        "ask on: pass --yes"))
        if not typer.confirm("Trade for real?", default=False, err=True):
            fail(SettingsError("--live", "not confirmed; nothing was sent"))
    return msgspec.structs.replace(settings, run=msgspec.structs.replace(settings.run, live=True))


def _needs_password(exchange: str) -> bool:
    """Whether ccxt requires a password (passphrase) to sign ``exchange``'s requests."""
    import ccxt

    factory = getattr(ccxt, exchange, None)
    return bool(factory is not None and factory().requiredCredentials.get("password"))


ConfigOpt = typer.Option(None, "--config", "-c", help="Settings file (default ./settings.toml).",
                         dir_okay=False)
ProfileOpt = typer.Option(None, "--profile", metavar="NAME",
                          help="Settings profile profiles/NAME.toml (written by arb optimize --save).")
