"""The bench report: percentiles, ratios over the raw transports, and the three files
(report.json, report.md, latency.png). Plain functions over the measured samples."""

from __future__ import annotations

from dataclasses import dataclass
import json
import math
from pathlib import Path
from typing import Any

# The flood's goal, and the red line in the plot.
ABSOLUTE_LIMIT_MS = 20.0
# Each node's idle CPU goal, in CPU-ms per second (1 % of a core).
IDLE_CPU_GOAL_MS_S = 10.0


@dataclass(frozen=True)
class Goal:
    """A path's p99 goal: at most ``limit`` ms, or ``limit`` times its baseline's p99."""

    limit: float
    over_baseline: bool = False

    def text(self) -> str:
        return f'≤ {self.limit:g}× baseline' if self.over_baseline else f'≤ {self.limit:g} ms'


@dataclass(frozen=True)
class Measured:
    """One measured path: what it is, what it rides on, its goal, and why it may miss."""

    key: str
    title: str
    baseline: tuple[str, ...]  # the baseline paths it rides on (their p99s add up)
    is_baseline: bool  # a raw transport itself
    note: str  # how to read it; the explanation if it misses its goal
    goal: Goal | None = None


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted samples (q in 0..100)."""
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


def summarize(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    return {'n': len(ordered), 'p50': percentile(ordered, 50), 'p90': percentile(ordered, 90),
            'p99': percentile(ordered, 99), 'max': ordered[-1],
            'mean': sum(ordered) / len(ordered)}


def missed(goal: Goal, p99: float, baseline_p99: float | None) -> str | None:
    """By how much the p99 misses ``goal`` (None when it meets it)."""
    if goal.over_baseline:
        if baseline_p99 is None or p99 <= goal.limit * baseline_p99:
            return None
        return (f'p99 {p99 / baseline_p99:.1f}× its baseline, goal {goal.limit:g}×: '
                f'{p99 - goal.limit * baseline_p99:.1f} ms over')
    if p99 <= goal.limit:
        return None
    return f'p99 {p99:.1f} ms, goal {goal.limit:g} ms: {p99 - goal.limit:.1f} ms over'


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
        if path.goal is not None:
            row['goal'] = path.goal.text()
            row['miss'] = missed(path.goal, row['p99'], row.get('baseline_p99'))
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
    before = report.get('before', {})
    lines += ['## Latency (ms)', '',
              f'Before: the same path in {before.get("label", "no earlier run")}.', '',
              '| path | n | p50 | p90 | p99 | max | p99 before | ratio p50 / p99 over '
              'baseline | goal (p99) | met |',
              '| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |']
    for row in report['paths']:
        ratio = (f'{row["ratio_p50"]:.1f}x / {row["ratio_p99"]:.1f}x over {row["baseline"]}'
                 if 'ratio_p50' in row else 'the baseline' if row['is_baseline'] else '')
        was = before.get('paths', {}).get(row['key'])
        met = '' if 'goal' not in row else 'no' if row['miss'] else 'yes'
        lines.append(f'| {row["title"]} | {row["n"]} | {_ms(row["p50"])} | {_ms(row["p90"])} '
                     f'| {_ms(row["p99"])} | {_ms(row["max"])} '
                     f'| {"" if was is None else _ms(was)} | {ratio} | {row.get("goal", "")} '
                     f'| {met} |')
    lines += ['', '## How to read each path', '']
    for row in report['paths']:
        miss = f' **Missed: {row["miss"]}.**' if row.get('miss') else ''
        lines.append(f'- **{row["title"]}**: {row["note"]}{miss}')
    flood = report.get('flood')
    if flood:
        lines += ['', '## Flood', '',
                  f'While the phone armed, drove and stopped over MQTT, a second client '
                  f'sent {flood["valid_rate"]:.0f} valid heartbeats and '
                  f'{flood["invalid_rate"]:.0f} invalid drives per second (asked for '
                  f'{flood["target_rate"]} each) for {flood["seconds"]:.0f} s. The bridge '
                  f'rejected {flood["rejected"]} of the invalid ones '
                  f'({flood["rejected"] / flood["seconds"]:.0f} a second) and forwarded one '
                  f'heartbeat in each mqtt.heartbeat_coalesce_ms, counting '
                  f'{flood.get("coalesced", "?")} as coalesced, so the gate and Control see '
                  "the phone's own requests, not thousands of heartbeats a second."]
        for failure in flood['failures']:
            lines.append(f"- a round was skipped: a request of the phone's did not get "
                         f'through in time under the flood ({failure})')
    lines += ['', '## CPU, memory and boot', '',
              '| node | CPU ms/s idle (before; goal) | driving (before) | under the flood '
              '| RSS MiB | of it a bare rclpy node | boot → first truth p50 / max (ms, n) |',
              '| --- | --- | --- | ---: | ---: | ---: | --- |']
    bare = report.get('bare_rclpy_rss_mib')
    for node, row in report['nodes'].items():
        boot = row['boot']
        was = before.get('nodes', {}).get(node, {})
        idle_was = f'{was["idle"]:.0f}' if 'idle' in was else '?'
        driving_was = f'{was["driving"]:.0f}' if 'driving' in was else '?'
        idle_met = 'met' if row['cpu_idle_ms_s'] <= IDLE_CPU_GOAL_MS_S else 'missed'
        lines.append(
            f'| {node} | {row["cpu_idle_ms_s"]:.1f} ({idle_was}; ≤ {IDLE_CPU_GOAL_MS_S:g}: '
            f'{idle_met}) | {row["cpu_driving_ms_s"]:.1f} ({driving_was}) '
            f'| {row.get("cpu_flood_ms_s", float("nan")):.0f} | {row["rss_mib"]:.1f} '
            f'| {"?" if bare is None else f"{bare:.1f}"} '
            f'| {_ms(boot["p50"])} / {_ms(boot["max"])} ({boot["n"]}) |')
    lines += ['', 'CPU is CPU time per second of wall time (1000 ms/s is one core busy), '
              'from /proc over the window; scale it by how much slower a core of the target '
              'is (a Raspberry Pi 4 core runs this Python several times slower). Driving '
              'means heartbeats at 5 Hz and drives at 10 Hz from the phone; the flood is the '
              "flooded runs'. RSS is at the end of the idle window; a bare rclpy node (rclpy "
              'and Fast DDS imported, one node created, nothing else) shows how much of it '
              "is ROS's. Boot is measured from process start to the node's systemd "
              'READY=1, which it sends right after its first truth publish.']
    for phase, profiles in report.get('profiles', {}).items():
        lines += ['', f'## Where the CPU goes: {phase} (py-spy, self time)', '']
        for node, top in profiles.items():
            shown = '; '.join(f'{share:.0f} % {frame}' for frame, share in top) or 'no samples'
            lines.append(f'- **{node}**: {shown}')
    lines += ['', '![latency](latency.png)', '']
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
