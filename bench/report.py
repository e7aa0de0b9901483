"""The bench report: percentiles, ratios over the raw transports, and the three files
(report.json, report.md, latency.png). Plain functions over the measured samples."""

from __future__ import annotations

from dataclasses import dataclass
import json
import math
from pathlib import Path
from typing import Any

# Paths that deserve a look: p99 above this many times its baseline's p99, or above
# this absolute bound.
RATIO_LIMIT = 5.0
ABSOLUTE_LIMIT_MS = 20.0


@dataclass(frozen=True)
class Measured:
    """One measured path: what it is, what it rides on, and why it may be slow."""

    key: str
    title: str
    baseline: tuple[str, ...]  # the baseline paths it rides on (their p99s add up)
    is_baseline: bool  # a raw transport itself
    note: str  # how to read it; the explanation if it is flagged


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted samples (q in 0..100)."""
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


def summarize(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    return {'n': len(ordered), 'p50': percentile(ordered, 50), 'p90': percentile(ordered, 90),
            'p99': percentile(ordered, 99), 'max': ordered[-1],
            'mean': sum(ordered) / len(ordered)}


def flagged(stats: dict[str, float], baseline_p99: float | None) -> list[str]:
    """Why a path needs a look ([] when it does not)."""
    reasons = []
    if stats['p99'] > ABSOLUTE_LIMIT_MS:
        reasons.append(f'p99 {stats["p99"]:.1f} ms > {ABSOLUTE_LIMIT_MS:.0f} ms')
    if baseline_p99 and stats['p99'] > RATIO_LIMIT * baseline_p99:
        reasons.append(f'p99 {stats["p99"] / baseline_p99:.1f}x its baseline > '
                       f'{RATIO_LIMIT:.0f}x')
    return reasons


def build(paths: list[Measured], samples: dict[str, list[float]], extra: dict[str, Any],
          machine: dict[str, Any], quick: bool) -> dict[str, Any]:
    """The report as data (what report.json holds)."""
    stats = {key: summarize(values) for key, values in samples.items() if values}
    rows = []
    for path in paths:
        if path.key not in stats:
            continue
        row: dict[str, Any] = {'key': path.key, 'title': path.title,
                               'is_baseline': path.is_baseline, **stats[path.key]}
        base = [stats[b] for b in path.baseline if b in stats]
        if path.baseline and len(base) == len(path.baseline):
            row['baseline'] = ' + '.join(path.baseline)
            row['baseline_p50'] = sum(b['p50'] for b in base)
            row['baseline_p99'] = sum(b['p99'] for b in base)
            row['ratio_p50'] = row['p50'] / row['baseline_p50']
            row['ratio_p99'] = row['p99'] / row['baseline_p99']
        row['flags'] = [] if path.is_baseline else flagged(stats[path.key],
                                                           row.get('baseline_p99'))
        row['note'] = path.note
        rows.append(row)
    return {'quick': quick, 'machine': machine, 'paths': rows, **extra,
            'samples_ms': samples}


def _ms(value: float) -> str:
    return f'{value:.2f}'


def markdown(report: dict[str, Any]) -> str:
    machine = report['machine']
    lines = ['# KILO.7 bench report', '',
             f'{machine["date"]} on {machine["cpu"]} ({machine["cores"]} cores), '
             f'{machine["os"]}, Python {machine["python"]}, paho-mqtt {machine["paho"]}, '
             f'mosquitto {machine["mosquitto"]}, rclpy from {machine["ros"]}.',
             '']
    if report['quick']:
        lines += ['**Quick run** (`--quick`): few samples, for development only; the '
                  'percentiles are not comparable with a full run.', '']
    lines += ['## Latency (ms)', '',
              '| path | n | p50 | p90 | p99 | max | ratio p50 / p99 over baseline |',
              '| --- | ---: | ---: | ---: | ---: | ---: | --- |']
    for row in report['paths']:
        ratio = (f'{row["ratio_p50"]:.1f}x / {row["ratio_p99"]:.1f}x over {row["baseline"]}'
                 if 'ratio_p50' in row else 'the baseline' if row['is_baseline'] else '')
        lines.append(f'| {row["title"]} | {row["n"]} | {_ms(row["p50"])} | {_ms(row["p90"])} '
                     f'| {_ms(row["p99"])} | {_ms(row["max"])} | {ratio} |')
    lines += ['', '## How to read each path', '']
    for row in report['paths']:
        flags = f' **Flagged: {"; ".join(row["flags"])}.**' if row['flags'] else ''
        lines.append(f'- **{row["title"]}**: {row["note"]}{flags}')
    flood = report.get('flood')
    if flood:
        lines += ['', '## Flood', '',
                  f'During the flooded STOP runs a second client sent {flood["valid_rate"]:.0f} '
                  f'valid and {flood["invalid_rate"]:.0f} invalid messages per second '
                  f'(asked for {flood["target_rate"]} each) for {flood["seconds"]:.0f} s; '
                  f'the bridge rejected {flood["rejected"]} of the invalid ones by the end '
                  f'({flood["rejected"] / flood["seconds"]:.0f} a second on average). The '
                  "phone's drives queue behind such a flood on the bridge's main "
                  'connection, so here the robot is driven over ROS and only the STOP comes '
                  "from the phone, on the bridge's priority connection."]
        for failure in flood['failures']:
            lines.append(f'- a STOP sample was skipped: the robot could not be armed in time '
                         f'under the flood ({failure})')
    lines += ['', '## Boot and resources', '',
              '| node | boot → first truth p50 / max (ms, n) | CPU % idle | CPU % driving '
              '| RSS MiB idle | RSS MiB driving |',
              '| --- | --- | ---: | ---: | ---: | ---: |']
    for node, row in report['nodes'].items():
        boot = row['boot']
        lines.append(f'| {node} | {_ms(boot["p50"])} / {_ms(boot["max"])} ({boot["n"]}) '
                     f'| {row["cpu_idle"]:.1f} | {row["cpu_driving"]:.1f} '
                     f'| {row["rss_idle_mib"]:.1f} | {row["rss_driving_mib"]:.1f} |')
    lines += ['', "Boot is measured from process start to the node's systemd READY=1, which "
              'it sends right after its first truth publish. Each boot sample starts a '
              'process, so there are fewer of them than latency samples. CPU is the share '
              'of one core over the window; driving means heartbeats at 5 Hz and drives at '
              '10 Hz from the phone.', '', '![latency](latency.png)', '']
    return '\n'.join(lines)


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot

    rows = report['paths']
    figure, axes = pyplot.subplots(figsize=(10, 0.5 * len(rows) + 1.5))
    data = [report['samples_ms'][row['key']] for row in rows]
    axes.boxplot(data, vert=False, whis=(1, 99), showfliers=True, flierprops={'markersize': 2})
    axes.set_yticks(range(1, len(rows) + 1), [row['title'] for row in rows], fontsize=8)
    axes.set_xscale('log')
    axes.set_xlabel('ms (log); whiskers p1-p99')
    axes.axvline(ABSOLUTE_LIMIT_MS, color='tab:red', linewidth=0.8, linestyle='--')
    axes.invert_yaxis()
    axes.set_title(f'KILO.7 latency, {report["machine"]["cpu"]}', fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot.close(figure)


def write(report: dict[str, Any], directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / 'report.json').write_text(json.dumps(report, indent=1) + '\n', encoding='utf-8')
    (directory / 'report.md').write_text(markdown(report), encoding='utf-8')
    plot(report, directory / 'latency.png')
