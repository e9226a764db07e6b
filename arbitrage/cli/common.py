"""What every ``arb`` command shares: loading settings from flags, one-line errors, exit codes,
common options.

``ArbError`` becomes one line on stderr and its exit code; settings errors exit 2. Every command
runs inside ``guarded`` (``arbitrage.cli`` registers them so), which does that for an error a
command did not catch itself and turns Ctrl-C into exit 130; a run stopped cleanly by SIGINT or
SIGTERM exits 128 + the signal's number too (``exit_for``), as shells expect. Only light modules
are imported here, so ``arb --help`` answers at once.
"""

from __future__ import annotations

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


def build_overrides(**flags: t.Any) -> dict[str, t.Any]:
    """Turn command-line flags (None = not given) into a nested settings override."""
    mapping = {
        "strategy": ("run", "strategy"), "source": ("run", "source"), "duration": ("run", "duration"),
        "seed": ("run", "seed"), "db": ("storage", "path"), "min_profit_bps": ("strategy", "min_profit_bps"),
        "max_notional": ("strategy", "max_notional"), "level": ("log", "level"),
        "max_legs": ("strategy", "max_legs"), "sequential_legs": ("trading", "sequential_legs"),
        "metrics_port": ("monitor", "metrics_port"),
    }
    out: dict[str, t.Any] = {}
    for flag, value in flags.items():
        if value is None or flag not in mapping:
            continue
        section, key = mapping[flag]
        out.setdefault(section, {})[key] = str(value) if isinstance(value, Path) else value
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
    """The one gate of real orders: every command that trades (run, backtest, optimize) passes it.

    No live venue exists yet, so ``--live`` or ``run.live`` is refused before anything starts
    (exit 2); a live venue will check its keys and the operator's intent here instead.
    """
    if live or settings.run.live:
        fail(SettingsError("--live", "live trading is not available in this version; paper trading only"))


ConfigOpt = typer.Option(None, "--config", "-c", help="Settings file (default ./settings.toml).",
                         dir_okay=False)
ProfileOpt = typer.Option(None, "--profile", metavar="NAME",
                          help="Settings profile profiles/NAME.toml (written by arb optimize --save).")
