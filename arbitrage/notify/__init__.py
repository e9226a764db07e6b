"""Notifications through Apprise: channels, messages, and the notifier plugin (see docs/monitoring.md)."""

from arbitrage.notify.channels import (
    ENV_URLS,
    Channel,
    SendResult,
    configured_urls,
    env_urls,
    load_channels,
    send_all,
)
from arbitrage.notify.messages import Gate, Message
from arbitrage.notify.plugin import Notifier

__all__ = [
    "ENV_URLS",
    "Channel",
    "Gate",
    "Message",
    "Notifier",
    "SendResult",
    "configured_urls",
    "env_urls",
    "load_channels",
    "send_all",
]
