"""The optional Redis bridge: mirror events out, and split market collectors from one engine.

Two plugins, both loaded only when ``redis.url`` is set (``arb run --redis URL``):

* ``redis`` (``bridge.mirror``, kind ``bridge``): a queued bus subscriber that writes the chosen
  events to Pub/Sub ``<prefix><Type>`` and to streams ``<prefix>stream:<Type>``, and in the
  collector role every venue's books, markets and feed status to ``<prefix>feed:<venue>``;
* ``redis_feed`` (``bridge.feed``, kind ``source``): the engine role's market source, reading the
  collectors' feed streams.

The other modules: ``names`` (keys, channels and which events are trading events), ``entries``
(the stream entry layout and the inbound decoder), ``outbox`` (what waits to be written),
``link`` (connecting, reconnecting with backoff, the down and back alerts), ``metrics``,
``consumer`` (a consumer group reader with idempotent handling, used by ``arb redis tail``),
``tail`` and ``roles``. redis-py is imported only by ``link`` and what runs on it, never by
``arb --help``. See ``docs/redis.md``.
"""
