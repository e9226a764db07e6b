"""The leg state machine: which states an arbitrage may move between, and the rule that picks them.

It exists so that the executor, storage, start-up reconciliation and the report agree on one
definition of an arbitrage's life, and so that an illegal move is a bug that shows. The states are
``events.ArbState``; the allowed moves (``EDGES``)::

    planned ──> submitted ──> filled ──────────┬──> done
       │            │ ^       partially_filled ─┤
       │            │ └────── (next leg of a    ├──> hedging ──> done
       │            │          sequential chain)│      │  ^
       │            ├──> unknown ──> (any of the│      v  │
       │            │      three outcomes, or   │    unknown (a hedge order's fate)
       │            │      back to hedging)     │
       └──> failed ─┴───────────────────────────┴──> needs_attention

``filled``/``partially_filled``/``failed`` are the outcome of the legs sent so far (``outcome``);
``done`` and ``needs_attention`` are final (``final``); every state but ``done`` may end in
``needs_attention`` (the run stopped, the task crashed, exposure could not be closed), and
``needs_attention`` may still move to ``hedging`` or ``done`` when start-up reconciliation later
closes what was left open.
"""

from __future__ import annotations

import collections.abc as c
import typing as t

from arbitrage.events import ArbState

__all__ = ["EDGES", "FINAL", "STATES", "IllegalTransition", "StateMachine", "final", "outcome"]

STATES: tuple[ArbState, ...] = t.get_args(ArbState)
"""Every state, in life order."""
FINAL: frozenset[ArbState] = frozenset({"done", "needs_attention"})
"""States an arbitrage ends in; anything else after a restart was cut off mid-flight."""

EDGES: dict[ArbState, frozenset[ArbState]] = {
    "planned": frozenset({"submitted", "failed", "needs_attention"}),
    "submitted": frozenset({"filled", "partially_filled", "failed", "unknown", "needs_attention"}),
    "unknown": frozenset({"filled", "partially_filled", "failed", "hedging", "needs_attention"}),
    "filled": frozenset({"submitted", "hedging", "done", "needs_attention"}),
    "partially_filled": frozenset({"submitted", "hedging", "done", "needs_attention"}),
    "failed": frozenset({"hedging", "done", "needs_attention"}),
    "hedging": frozenset({"unknown", "done", "needs_attention"}),
    "done": frozenset(),
    "needs_attention": frozenset({"hedging", "done"}),
}
"""State -> the states it may move to (module doc's diagram). Staying in a state is no move."""


class IllegalTransition(RuntimeError):
    """A move ``EDGES`` does not allow: a bug in whoever asked for it."""


def outcome(results: c.Iterable[tuple[str, float]]) -> ArbState:
    """The state after a round of legs, from each leg sent so far as ``(order status, amount
    filled)``: ``filled`` if every one is ``filled`` (fully), ``failed`` if none filled anything
    (none sent: also ``failed``), else ``partially_filled``."""
    results = list(results)
    if not any(filled > 0 for _, filled in results):
        return "failed"
    if all(status == "filled" for status, _ in results):
        return "filled"
    return "partially_filled"


def final(*, open_exposure: bool, unknown: bool) -> ArbState:
    """Where a finished arbitrage ends: ``needs_attention`` if it left exposure open (beyond dust)
    or an order whose fate is still unknown, else ``done``."""
    return "needs_attention" if open_exposure or unknown else "done"


class StateMachine:
    """One arbitrage's current state; ``move`` checks each transition against ``EDGES``.

    :param publish: called with ``(state, reason)`` for every move made (not for a refused one).
    :param on_illegal: told of every illegal move (production: log it); the move is not made.
    :param strict: also raise ``IllegalTransition`` (tests).
    :param state: where it starts: ``planned`` (published), or the stored state of an arbitrage
        start-up reconciliation resumes (not published again).
    """

    def __init__(self, publish: c.Callable[[ArbState, str], None], *, strict: bool = False,
                 on_illegal: c.Callable[[str], None] | None = None, state: ArbState = "planned") -> None:
        self.state: ArbState = state
        self.history: list[ArbState] = [state]
        """Every state taken, the first one first."""
        self._publish = publish
        self._strict = strict
        self._on_illegal = on_illegal
        if state == "planned":  # any other: an arbitrage resumed after a restart, its state stored
            publish("planned", "")

    def move(self, state: ArbState, reason: str = "") -> bool:
        """Move to ``state`` and publish it; False if already there (nothing published) or illegal.

        :raises IllegalTransition: in strict mode, for a move ``EDGES`` does not allow.
        """
        if state == self.state:
            return False
        if state not in EDGES[self.state]:
            message = f"illegal arbitrage state transition {self.state} -> {state} ({reason})"
            if self._on_illegal is not None:
                self._on_illegal(message)
            if self._strict:
                raise IllegalTransition(message)
            return False
        self.state = state
        self.history.append(state)
        self._publish(state, reason)
        return True

    @property
    def finished(self) -> bool:
        return self.state in FINAL
