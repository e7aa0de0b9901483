"""Board readings for kilo/state/system, from /proc and /sys; None where there is none."""

from __future__ import annotations

import os
from pathlib import Path

from kilo_core.core.telemetry import MachineFacts

# On a Raspberry Pi the SoC sensor is thermal_zone0 ("cpu-thermal").
THERMAL_ZONE = Path('/sys/class/thermal/thermal_zone0/temp')


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding='ascii')
    except (OSError, UnicodeDecodeError):
        return None


def uptime_s() -> float:
    text = _read(Path('/proc/uptime'))
    return float(text.split()[0]) if text else 0.0


def load_1m() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def mem_used_pct() -> float | None:
    text = _read(Path('/proc/meminfo'))
    if text is None:
        return None
    fields = {}
    for line in text.splitlines():
        name, _, rest = line.partition(':')
        parts = rest.split()
        if parts and parts[0].isdigit():
            fields[name] = int(parts[0])
    total, available = fields.get('MemTotal'), fields.get('MemAvailable')
    if not total or available is None:
        return None
    return round(100.0 * (total - available) / total, 1)


def cpu_temp_c() -> float | None:
    text = _read(THERMAL_ZONE)
    if text is None or not text.strip().lstrip('-').isdigit():
        return None
    return round(int(text) / 1000.0, 1)


def read() -> MachineFacts:
    return MachineFacts(uptime_s(), load_1m(), mem_used_pct(), cpu_temp_c())
