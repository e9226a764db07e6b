"""Notification channels: Apprise services built from URLs and config files, one per target.

Each URL becomes its own Apprise service, so every target is sent to, counted and reported on
its own (a dead Telegram bot does not hide a working e-mail). Sending is blocking HTTP: call
``Channel.send`` from a worker thread, never the event loop. Channels are named by ``label``,
the URL with its secrets removed (``#1 tgram://***``); the URL itself is never logged. Apprise's
own log records are passed to loguru at DEBUG level, redacted.
"""

from __future__ import annotations

import collections.abc as c
import logging
import re
import threading
import typing as t
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from loguru import logger

from arbitrage.errors import SettingsError
from arbitrage.redact import mask_url, redact_text
from arbitrage.settings import NotifySettings

ENV_URLS = "ARB_NOTIFY_URLS"
"""Environment variable with more Apprise URLs, separated by commas or whitespace."""

_SEPARATORS = re.compile(r"[\s,]+")


def env_urls(environ: c.Mapping[str, str]) -> list[str]:
    """The URLs in ``ARB_NOTIFY_URLS`` (comma or whitespace separated)."""
    return [url for url in _SEPARATORS.split(environ.get(ENV_URLS, "")) if url]


def configured_urls(settings: NotifySettings, environ: c.Mapping[str, str],
                    extra: c.Iterable[str] = ()) -> list[str]:
    """Every URL from settings, the environment and ``extra``, in that order, without repeats."""
    return list(dict.fromkeys([*settings.urls, *env_urls(environ), *extra]))


_preload_lock = threading.Lock()
_preloaded = False


def preload_apprise() -> None:
    """Import Apprise and load its plugins now (about 0.3 s, once per process); idempotent.

    Apprise discovers its plugins on first use, and one of them imports ``imghdr``, deprecated
    since Python 3.11: the ``DeprecationWarning`` is silenced here, where we own the import, so
    ``-W error`` runs (our test suite) work. Call it from the main thread: ``catch_warnings`` is
    process-wide.
    """
    global _preloaded
    with _preload_lock:
        if _preloaded:
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from apprise.manager_plugins import NotificationManager

            NotificationManager().load_modules()
        _bridge_apprise_logging()
        _preloaded = True


class _ToLoguru(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = redact_text(record.getMessage())
        except Exception:
            return
        logger.debug("apprise {}: {}", record.levelname.lower(), message)


def _bridge_apprise_logging() -> None:
    """Send Apprise's warnings to loguru (DEBUG, redacted) instead of stderr; idempotent."""
    log = logging.getLogger("apprise")
    if not any(isinstance(h, _ToLoguru) for h in log.handlers):
        log.addHandler(_ToLoguru(level=logging.WARNING))
        log.propagate = False


class Channel:
    """One notification target. ``send`` blocks: call it from a worker thread."""

    def __init__(self, service: t.Any, label: str) -> None:
        self.service = service
        self.label = label
        """The URL with secrets removed, e.g. ``#1 json://***``: safe to log and show."""
        self.sent = 0
        self.failed = 0

    def send(self, title: str, body: str, kind: str = "info") -> bool:
        """Send one message; True if the service accepted it. Blocking."""
        return bool(self.service.notify(body=body, title=title, notify_type=kind))

    def __repr__(self) -> str:
        return f"<Channel {self.label}>"


def _label(index: int, url: str) -> str:
    return f"#{index} {mask_url(url)}"


def load_channels(urls: c.Sequence[str], config: str = "", timeout_s: float = 10.0) -> list[Channel]:
    """Build one channel per URL, plus one per URL in the Apprise ``config`` file. Blocking (reads files).

    :raises SettingsError: naming the URL (by position, redacted) Apprise cannot use, a missing
        config file, or a config file without a usable URL.
    """
    import apprise

    preload_apprise()
    channels: list[Channel] = []
    for url in urls:
        box = apprise.Apprise()
        label = _label(len(channels) + 1, url)
        if not box.add(url):
            raise SettingsError("notify.urls", f"Apprise cannot use {label}")
        channels.extend(Channel(service, label) for service in box)
    if config:
        if not Path(config).is_file():
            raise SettingsError("notify.config", f"Apprise config file not found: {config}")
        source = apprise.AppriseConfig()
        source.add(config)
        box = apprise.Apprise()
        box.add(source)
        services = list(box)
        if not services:
            raise SettingsError("notify.config", f"no usable URL in {config}")
        for service in services:
            channels.append(Channel(service, _label(len(channels) + 1, service.url(privacy=True))))
    for channel in channels:
        for attribute in ("socket_connect_timeout", "socket_read_timeout"):
            if hasattr(channel.service, attribute):
                setattr(channel.service, attribute, timeout_s)
    return channels


class SendResult(t.NamedTuple):
    """What one channel did with one message."""

    label: str
    ok: bool


def send_all(channels: c.Sequence[Channel], title: str, body: str, kind: str = "info") -> list[SendResult]:
    """Send one message to every channel at once (one thread each) and report each. Blocking."""
    if not channels:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(channels)), thread_name_prefix="arb-notify") as pool:
        futures = [pool.submit(channel.send, title, body, kind) for channel in channels]
        results = []
        for channel, future in zip(channels, futures, strict=True):
            try:
                ok = future.result()
            except Exception as exc:
                logger.warning("notification to {} raised {}", channel.label, redact_text(repr(exc)))
                ok = False
            results.append(SendResult(channel.label, ok))
    return results
