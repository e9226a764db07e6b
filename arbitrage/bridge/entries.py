"""The layout of what the bridge writes, and the engine's strict reading of what comes in.

A stream entry has five fields, so a consumer can filter and deduplicate without decoding:
``type`` (the event's tag), ``node`` and ``run`` (who wrote it), ``seq`` (the writer's sequence
number, increasing per run) and ``event`` (the event as tagged JSON, ``arbitrage.events.encode_json``,
the encoding of recordings). ``run:seq`` identifies an entry across redeliveries and resends. A
Pub/Sub message is the tagged JSON alone.

``Inbound`` is the engine's gate: an entry is taken only if its ``type`` is allowed
(``redis.inbound``), its JSON decodes to an allowed type (the decoder knows no other), it was not
written by this run, and a feed entry names the feed's own venue. Anything else is refused with a
reason, which the caller counts.
"""

from __future__ import annotations

import collections.abc as c
import typing as t

import msgspec

from arbitrage.events import EVENT_TYPES, Event

__all__ = ["EVENTS_BY_NAME", "Inbound", "Refused", "entry_fields"]

EVENTS_BY_NAME: dict[str, type[Event]] = {tp.__name__: tp for tp in EVENT_TYPES}


def entry_fields(type_name: str, node: str, run_id: str, seq: int, payload: bytes) -> tuple[t.Any, ...]:
    """The field-value pairs of one stream entry, flat, as ``XADD`` takes them."""
    return (b"type", type_name, b"node", node, b"run", run_id, b"seq", seq, b"event", payload)


class Refused(Exception):
    """An inbound entry the engine does not take; ``reason`` is a metric label."""

    def __init__(self, reason: str, type_name: str = "") -> None:
        super().__init__(f"{reason}: {type_name}")
        self.reason = reason
        self.type_name = type_name


class Inbound:
    """Decodes feed entries of the allowed event types only.

    :param allowed: event type names (``redis.inbound``, checked by the settings).
    :param run_id: this process's run: entries it wrote itself are refused (``loop``).
    """

    def __init__(self, allowed: c.Iterable[str], run_id: str) -> None:
        types = tuple(EVENTS_BY_NAME[name] for name in allowed)
        self.allowed = frozenset(name.encode() for name in allowed)
        self._decode = msgspec.json.Decoder(t.Union[types]).decode  # type: ignore[valid-type]  # noqa: UP007
        self.run_id = run_id.encode()

    def decode(self, fields: c.Mapping[bytes, bytes], venue: str) -> tuple[Event, str, str, int]:
        """``(event, node, run_id, seq)`` of an entry of ``venue``'s feed.

        :raises Refused: with the reason (``type``, ``invalid``, ``loop``, ``venue``).
        """
        type_name = fields.get(b"type", b"")
        if type_name not in self.allowed:
            raise Refused("type", type_name.decode(errors="replace")[:40])
        run = fields.get(b"run", b"")
        if run == self.run_id:
            raise Refused("loop", type_name.decode())
        try:
            event = self._decode(fields[b"event"])
            seq = int(fields[b"seq"])
        except (KeyError, ValueError):  # msgspec.DecodeError and ValidationError are ValueErrors
            raise Refused("invalid", type_name.decode()) from None
        if getattr(event, "venue", venue) != venue:
            raise Refused("venue", type_name.decode())
        return event, fields.get(b"node", b"").decode(errors="replace"), run.decode(errors="replace"), seq
