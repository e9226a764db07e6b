"""Monitoring: alerts, the kill switch, Prometheus metrics and health (see docs/monitoring.md)."""

from arbitrage.monitor.alerts import LEVELS, AlertBook, Condition
from arbitrage.monitor.killswitch import KillSwitch, Trip, clear_halt, read_halt, write_halt
from arbitrage.monitor.plugin import STAGES, Monitor
from arbitrage.monitor.server import MetricsServer
from arbitrage.monitor.view import FeedInfo, LatencyInfo, MonitorView

__all__ = [
    "LEVELS",
    "STAGES",
    "AlertBook",
    "Condition",
    "FeedInfo",
    "KillSwitch",
    "LatencyInfo",
    "MetricsServer",
    "Monitor",
    "MonitorView",
    "Trip",
    "clear_halt",
    "read_halt",
    "write_halt",
]
