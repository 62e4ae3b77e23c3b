"""Intervals as people write them: ``90``, ``90s``, ``1.5m``, ``5m``, ``1h``.

Core, because both ``inject --refresh`` (which writes the flag into a manifest) and
``fetch --refresh`` (which runs it) must accept exactly the same values.

>>> parse_interval("90"), parse_interval("90s"), parse_interval("5m"), parse_interval("1h")
(90.0, 90.0, 300.0, 3600.0)
"""

from __future__ import annotations

from secretsboot.errors import BadInputError

MIN_INTERVAL = 1.0
MAX_INTERVAL = 7 * 24 * 3600.0
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_interval(text: str | float, flag: str = "--refresh") -> float:
    """Seconds from ``90``, ``90s``, ``1.5m``, ``5m`` or ``1h``; a clear error otherwise."""
    raw = str(text).strip().lower()
    unit = raw[-1:] if raw[-1:] in ("s", "m", "h") else ""
    number = raw[: len(raw) - len(unit)]
    try:
        seconds = float(number) * _UNITS[unit]
    except ValueError:
        raise BadInputError(
            f"{flag}: '{text}' is not an interval", hint="use 90, 90s, 5m or 1h"
        ) from None
    if not MIN_INTERVAL <= seconds <= MAX_INTERVAL:
        raise BadInputError(
            f"{flag}: {text} is out of range",
            hint=f"use between {MIN_INTERVAL:.0f}s and {MAX_INTERVAL / 86400:.0f} days",
        )
    return seconds
