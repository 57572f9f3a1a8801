"""How numbers, losses, durations and dates read, in the app and on the command line alike."""
from __future__ import annotations

import math
from datetime import datetime, timedelta


def fmt_duration(seconds: float) -> str:
    return str(timedelta(seconds=int(seconds))) if math.isfinite(seconds) else "?"


def fmt_loss(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.4f}"


def fmt_count(n: float, unit: str = "") -> str:
    """Three significant digits and an SI suffix: 537K, 1.23M, 2.1GB."""
    for suffix in ("", "K", "M", "G", "T"):
        if abs(n) < 1000:
            return f"{n:.3g}{suffix}{unit}"
        n /= 1000
    return f"{n:.3g}P{unit}"


def fmt_date(timestamp: float | None) -> str:
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M") if timestamp else "-"


def fmt_value(value: object) -> str:
    """A config value as a user would type it: 0.0005, 64, 'a prompt'."""
    return f"{value:g}" if isinstance(value, float) else repr(value) if isinstance(value, str) else str(value)


def fmt_norm(value: float | None) -> str:
    """A gradient norm or update ratio: 3 significant digits, whatever its scale."""
    return "-" if value is None or not math.isfinite(value) else f"{value:.3g}"


def fmt_mfu(value: float | None) -> str:
    """Model FLOPs utilization; "unknown" for a device whose peak gpt-tui does not know."""
    return "unknown" if value is None else f"{100 * value:.1f}%"
