#!/usr/bin/env python3
# Usage: python3 benches/report.py [CRITERION_DIR ...] [--out DIR] [--preliminary]
"""Turns criterion's saved estimates into benches/README.md, benches/load.svg and
benches/processes.svg (standard library only).

It owns the report of the benchmarks: it reads the mean time per iteration criterion saved for
every benchmark of the groups the benches name (`core-*`, `peers-*` and `threads2-*`, named
FAMILY-KxV-SIZE-LOAD, `churn`, `processes`), and the median of every ratio benchmark (the same
names with `ratio-` in front, `ratio-churn`, `processes-scaling`: both sides timed together in
each sample, see benches/support/mod.rs), and writes one table per workload family with ns/op
and operations per second for every map and its ratio to this crate, a table of the single-thread
and peer targets (how many paired ratios meet each, and the worst), the machine (CPU model,
processors, date) and the commands used, plus two hand-written SVG plots: operations per second
against load for every map (16-byte keys, 64-byte values, 2^12 and 2^20 entries) and aggregate
operations per second against the number of processes.

CRITERION_DIR defaults to $CRITERION_HOME, else $CARGO_TARGET_DIR/criterion, else
target/criterion, as the benches themselves do; relative paths are taken from the repository
root (where `cargo bench` runs the benches). Given several directories, a group found in more
than one is read from the first. Missing groups are skipped with a note. `--preliminary` marks
the README as a preliminary run (for numbers from a noisy or partial run). With no estimates at
all it writes nothing and exits with status 1.
"""

import argparse
import datetime
import json
import math
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
USAGE = "python3 benches/report.py [CRITERION_DIR ...] [--out DIR] [--preliminary]"

OURS = "shared-hashmap"
# Every map in report order, with its colour and dash pattern in the plots.
MAPS = {
    OURS: ("#d62728", ""),
    "std": ("#1f77b4", ""),
    "hashbrown": ("#2ca02c", ""),
    "heapless": ("#9467bd", "6,3"),
    "dashmap": ("#ff7f0e", "6,3"),
    "lmdb": ("#8c564b", "2,3"),
    "lmdb-batched": ("#e377c2", "2,3"),
}
OPS = ["get_hit", "get_miss", "insert", "update", "remove", "mix_90_10", "mix_50_50"]
WORKLOADS = [
    "get_distinct",
    "get_private",
    "get_hot",
    "mix_90_10_distinct",
    "mix_90_10_hot",
    "mix_50_50_distinct",
    "mix_50_50_hot",
    "fetch_add",
    "len",
]
WORKLOAD_COLOURS = [
    "#d62728",
    "#7f7f7f",
    "#ff9896",
    "#1f77b4",
    "#aec7e8",
    "#2ca02c",
    "#98df8a",
    "#9467bd",
    "#8c564b",
]
FAMILY = re.compile(r"^(ratio-)?(core|peers|threads2)-(\d+)x(\d+)-(\d+)([km])-(\d+)$")
# The churn, cliff, calibration and scaling ratios' groups.
CHURN_RATIO = "ratio-churn"
CLIFF = "ratio-cliff"
CALIBRATION = "ratio-calibration"
SCALING = "processes-scaling"
BENCH_OF = {"core": "core", "churn": "core", "peers": "peers", "threads2": "peers",
            "processes": "processes"}


def is_ratio(group):
    """Whether `group` holds ratio benchmarks (whose median is the ratio), not timings."""
    return group.startswith("ratio-") or group == SCALING


# ---------------------------------------------------------------- reading criterion's output


def default_dirs():
    """The directory the benches save to, by the rules criterion and benches/support use."""
    if os.environ.get("CRITERION_HOME"):
        return [Path(os.environ["CRITERION_HOME"])]
    if os.environ.get("CARGO_TARGET_DIR"):
        return [Path(os.environ["CARGO_TARGET_DIR"]) / "criterion"]
    return [Path("target/criterion")]


def load(dirs):
    """{group: {(function, value): estimate}} (the mean ns of a timing, the median of a ratio),
    {(group, function, value): (low, high)} (the 95% confidence interval criterion gives for
    the median of each ratio) and the newest estimate's modification time."""
    groups, intervals, newest = {}, {}, None
    for base in dirs:
        base = base if base.is_absolute() else ROOT / base
        if not base.is_dir():
            print(f"note: {base} does not exist", file=sys.stderr)
            continue
        found, found_intervals = {}, {}
        for meta in base.glob("**/new/benchmark.json"):
            try:
                bench = json.loads(meta.read_text())
                estimates = json.loads((meta.parent / "estimates.json").read_text())
                statistic = "median" if is_ratio(bench["group_id"]) else "mean"
                estimate = float(estimates[statistic]["point_estimate"])
            except (OSError, ValueError, KeyError, TypeError) as error:
                print(f"note: skipping {meta.parent}: {error}", file=sys.stderr)
                continue
            function = bench.get("function_id") or ""
            value = bench.get("value_str") or ""
            found.setdefault(bench["group_id"], {})[(function, value)] = estimate
            interval = estimates[statistic].get("confidence_interval") or {}
            if is_ratio(bench["group_id"]) and "lower_bound" in interval:
                found_intervals[(bench["group_id"], function, value)] = (
                    interval["lower_bound"], interval["upper_bound"])
            mtime = meta.parent.joinpath("estimates.json").stat().st_mtime
            newest = mtime if newest is None else max(newest, mtime)
        for group, results in found.items():
            if group not in groups:
                groups[group] = results
                intervals.update({key: bounds for key, bounds in found_intervals.items()
                                  if key[0] == group})
    return groups, intervals, newest


def size_entries(size, unit):
    """`4`, `k` -> 4096."""
    return int(size) << (10 if unit == "k" else 20)


def families(groups):
    """{family: {(k, v, entries): {load: results}}} for the FAMILY-KxV-SIZE-LOAD groups, and the
    same for their ratio groups."""
    out, ratios = {}, {}
    for group, results in groups.items():
        m = FAMILY.match(group)
        if m:
            ratio, family, k, v, size, unit, load_ = m.groups()
            table = (int(k), int(v), size_entries(size, unit))
            into = ratios if ratio else out
            into.setdefault(family, {}).setdefault(table, {})[int(load_)] = results
    return out, ratios


def ordered(names, known):
    """`names` with the `known` ones first, in their order, then the others sorted."""
    names = set(names)
    return [n for n in known if n in names] + sorted(names - set(known))


# ---------------------------------------------------------------- formatting


def fmt_ns(ns):
    """Nanoseconds with three significant digits (whole ones from 100 on)."""
    if ns < 10:
        return f"{ns:.2f}"
    if ns < 100:
        return f"{ns:.1f}"
    return f"{ns:,.0f}"


def fmt_mops(ns):
    """Millions of operations per second for `ns` per operation, three significant digits."""
    mops = 1e3 / ns
    if mops >= 100:
        return f"{mops:.0f}"
    if mops >= 10:
        return f"{mops:.1f}"
    if mops >= 1:
        return f"{mops:.2f}"
    return f"{mops:.3g}"


def power_of_two(n):
    """`4096` -> `2^12`; other numbers as they are."""
    return f"2^{n.bit_length() - 1}" if n & (n - 1) == 0 else str(n)


def table(header, rows, right_from=0):
    """A markdown table; columns from `right_from` on are right-aligned."""
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join("---:" if i >= right_from else "---" for i in range(len(header))) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------- the README's sections


def family_section(title, intro, tables, ratio_tables):
    """One family (`core`, `peers`, `threads2`): a table per key/value size and table size, rows
    per load and workload, for every map its ns/op, M ops/s and time / this crate's time (the
    paired ratio from `ratio_tables` where one was measured, else the quotient of the two
    timings, in italics)."""
    out = [f"## {title}", "", intro, ""]
    quotients = False
    for (k, v, entries), by_load in sorted(tables.items()):
        maps = ordered({m for r in by_load.values() for (_, m) in r}, MAPS)
        others = [m for m in maps if m != OURS]
        header = ["load", "workload"]
        for m in maps:
            header += [f"{m} ns", "M ops/s"] + ([] if m == OURS else [f"{m} / ours"])
        rows = []
        for load_ in sorted(by_load):
            results = by_load[load_]
            paired = ratio_tables.get((k, v, entries), {}).get(load_, {})
            for op in ordered({f for (f, _) in results}, OPS):
                ours = results.get((op, OURS))
                row = [f"{load_}%", op]
                for m in maps:
                    ns = results.get((op, m))
                    row += [fmt_ns(ns), fmt_mops(ns)] if ns else ["-", "-"]
                    if m == OURS:
                        continue
                    if (op, m) in paired:
                        row.append(f"{paired[(op, m)]:.2f}")
                    elif ns and ours:
                        row.append(f"*{ns / ours:.2f}*")
                        quotients = True
                    else:
                        row.append("-")
                rows.append(row)
        out += [f"### {k}-byte keys, {v}-byte values, {power_of_two(entries)} entries", ""]
        out += [table(header, rows, 2), ""]
        if others:
            out += [f"`MAP / ours`: the map's time / {OURS}'s time, both timed in every sample of "
                    f"one ratio benchmark, criterion's median (above 1.00, {OURS} is faster).", ""]
    if quotients:
        out += ["A ratio in italics is the quotient of the two separate timings: no ratio "
                "benchmark was saved for it.", ""]
    return out


def churn_section(results, ratios):
    """The `churn` group: misses in a fresh and in a churned table, and their paired ratio."""
    rows = []
    for case in ordered({v for (_, v) in results}, ["fresh", "churned"]):
        ns = results.get(("get_miss", case))
        if ns:
            ratio = 1.0 if case == "fresh" else ratios.get(("get_miss", case))
            rows.append([case, fmt_ns(ns), fmt_mops(ns), f"{ratio:.2f}" if ratio else "-"])
    return [
        "## churn: misses after 10 million insert/delete cycles",
        "",
        f"`get_miss` on a 16/64 table of 2^12 entries at 50% load, fresh and after 10 million "
        f"insert/delete cycles at that load ({OURS} only; `/ fresh`: the churned table's time "
        "over the fresh one's, both timed in every sample; target: at most 1.2).",
        "",
        table(["table", "ns", "M ops/s", "/ fresh"], rows, 1),
        "",
    ]


def cliff_section(ratios):
    """The `ratio-cliff` group: misses at 90% load over misses at 50%, per table."""
    rows = []
    for (k, v) in sorted({tuple(map(int, re.match(r"(\d+)x(\d+)", t).groups()))
                          for (_, t) in ratios}):
        for size, label in [("4k", "2^12"), ("1m", "2^20")]:
            ratio = ratios.get(("get_miss", f"{k}x{v}-{size}"))
            if ratio:
                rows.append([f"{k}/{v} bytes, {label} entries", f"{ratio:.2f}"])
    return [
        "## cliff: misses at 90% load",
        "",
        f"`get_miss` on {OURS}'s map at 90% load over the same at 50% load, both timed in "
        "every sample (target: at most 3).",
        "",
        table(["table", "90% / 50%"], rows, 1),
        "",
    ]


# The issues' single-thread and peer targets, as they are judged in the benches' own printouts
# (`target` in benches/core.rs and benches/peers.rs): (what, family, map, workloads, which
# tables, the lowest MAP / ours ratio that meets it).
TARGETS = [
    ("get hit, get miss, remove: at most `std`'s time", "core", "std",
     {"get_hit", "get_miss", "remove"}, lambda entries: True, 1.0),
    ("insert: at most 1.25x `std`'s time (2^12 entries)", "core", "std",
     {"insert"}, lambda entries: entries <= 1 << 12, 0.8),
    ("insert: at most 1.5x `std`'s time (2^20 entries)", "core", "std",
     {"insert"}, lambda entries: entries > 1 << 12, 1 / 1.5),
    ("get hit: at most 2.5x `hashbrown`'s time", "core", "hashbrown",
     {"get_hit"}, lambda entries: True, 1 / 2.5),
    ("every other workload: at most 3x `hashbrown`'s time", "core", "hashbrown",
     set(OPS) - {"get_hit"}, lambda entries: True, 1 / 3),
    ("every workload: faster than `heapless`", "peers", "heapless",
     set(OPS), lambda entries: True, 1.0),
    ("two threads, 90/10 mix: at least as fast as `dashmap`", "threads2", "dashmap",
     {"mix_90_10"}, lambda entries: True, 1.0),
    ("gets: at least 5x faster than LMDB (a transaction each)", "peers", "lmdb",
     {"get_hit", "get_miss"}, lambda entries: True, 5.0),
    ("inserts and updates: at least 100x faster than LMDB (a transaction each)", "peers", "lmdb",
     {"insert", "update"}, lambda entries: True, 100.0),
]


def targets_section(ratio_fams):
    """For each of `TARGETS`, how many of its paired ratios meet it, and the worst of them."""
    rows = []
    for what, family, peer, ops, tables, lowest in TARGETS:
        judged = []
        for (k, v, entries), by_load in ratio_fams.get(family, {}).items():
            if not tables(entries):
                continue
            for load_, ratios in by_load.items():
                for op in ops:
                    if (op, peer) in ratios:
                        judged.append((ratios[(op, peer)], f"{k}/{v} {power_of_two(entries)} "
                                       f"{load_}% {op}"))
        if not judged:
            continue
        met = sum(ratio >= lowest for ratio, _ in judged)
        worst, where = min(judged)
        rows.append([what, f"{met} of {len(judged)}", f"{worst:.2f} ({where})"])
    if not rows:
        return []
    return ["## Targets", "",
            f"Each target judged on the paired ratios below (`MAP / ours`: above 1.00, {OURS} is "
            "faster), over every table that has them; the worst is the lowest ratio. The "
            "processes, churn and cliff targets are in their own sections.", "",
            table(["target", "met", "worst MAP / ours"], rows, 1), ""]


def method_section(calibration):
    """How ratios are measured, and the calibration ratios that show the method's error."""
    out = [
        "## How the ratios are measured",
        "",
        "Every ratio in this report is measured, not divided: a ratio benchmark times both maps "
        "in each of its 20 samples (the other map for half its share, this crate's map, the "
        "other for the other half, each share sized so that both sides run about as long), and "
        "the ratio reported is criterion's median over the samples. On a shared machine a map's "
        "speed drifts by tens of percent between two benchmarks seconds apart, so the ns "
        "columns, each from a benchmark of its own, can disagree with the ratio columns; the "
        "ratios are the numbers to compare.",
        "",
    ]
    if calibration:
        rows = [[op, f"{calibration[(op, OURS)]:.2f}"]
                for op in OPS if (op, OURS) in calibration]
        out += [f"Calibration: {OURS}'s map against an identical copy of itself (16/64 bytes, "
                "2^12 entries, 50% load), where the true ratio is 1.00 "
                "(`ratio-calibration`):", "",
                table(["workload", "copy / ours"], rows, 1), ""]
    return out


def processes_data(results):
    """{workload: {processes: ns per aggregate operation}}."""
    data = {}
    for (workload, k), ns in results.items():
        if k.isdigit():
            data.setdefault(workload, {})[int(k)] = ns
    return data


def processes_section(results, scaling, intervals):
    """The `processes` group: a row per workload and process count, with the scaling ratios of
    `processes-scaling` (and their `intervals`, as `load` gives them), and the target."""
    data = processes_data(results)

    def interval(workload, k):
        """` (low-high)`: the 95% interval of the median scaling ratio, where saved."""
        bounds = intervals.get((SCALING, workload, str(k)))
        return f" ({bounds[0]:.2f}-{bounds[1]:.2f})" if bounds else ""

    rows = []
    for workload in ordered(data, WORKLOADS):
        for k in sorted(data[workload]):
            ns = data[workload][k]
            times = 1.0 if k == 1 else scaling.get((workload, str(k)))
            rows.append([workload, str(k), fmt_ns(ns), fmt_mops(ns),
                         f"{times:.2f}{interval(workload, k) if k > 1 else ''}" if times else "-",
                         f"{100 * times / k:.0f}%" if times else "-"])
    out = [
        "## processes: one map in shared memory, 1 to N processes",
        "",
        "Aggregate throughput of all processes (16-byte keys, 64-byte values, 2^16 entries at "
        "50% load; each process pinned to a processor of its own): `*_distinct`, 256 keys of "
        "its own per process; `get_private`, the same reads from a private copy of the map in "
        "each process's heap (what the machine allows without sharing); `*_hot`, every process "
        "on the same 64 keys; `fetch_add`, one counter for all; `len`, every process counting. "
        "`x 1 process`: k processes' throughput over one's, rounds of both alternating within "
        "every sample (criterion's median, with its 95% confidence interval); efficiency: that "
        "over k. On a machine whose other tenants come and go, the median of one run moves "
        "between runs by more than that interval says.",
        "",
        table(["workload", "processes", "ns/op", "M ops/s", "x 1 process", "efficiency"], rows, 1),
        "",
    ]
    times = scaling.get(("get_distinct", "2"))
    if times:
        verdict = "met" if times >= 1.8 else "missed"
        out += [f"Target: 2 processes read distinct keys at least 1.8x as fast as one: "
                f"{times:.2f}x{interval('get_distinct', 2)} ({verdict}).", ""]
    if data:
        out += ["![aggregate operations per second against processes](processes.svg)", ""]
    return out


# ---------------------------------------------------------------- SVG


def esc(text):
    """`text` escaped for SVG."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def log_range(values):
    """Whole decades around `values`."""
    lo = math.floor(math.log10(min(values)))
    hi = math.ceil(math.log10(max(values)))
    return lo, max(hi, lo + 1)


def si(x):
    """`x` with an SI suffix: 1e6 -> `1M`."""
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if x >= div:
            return f"{x / div:g}{suffix}"
    return f"{x:g}"


def panel(x0, y0, w, h, title, series, xs, xlabel):
    """A plot at (x0, y0), `w` x `h` pixels: `series` is [(label, colour, dash, {x: y})], drawn
    against the x ticks `xs` on a linear x axis and a logarithmic y axis of whole decades."""
    values = [y for (_, _, _, pts) in series for y in pts.values() if y > 0]
    parts = [f'<text x="{x0 + w / 2:.1f}" y="{y0 - 8}" text-anchor="middle" '
             f'font-weight="bold">{esc(title)}</text>',
             f'<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#999"/>']
    if not values:
        parts.append(f'<text x="{x0 + w / 2}" y="{y0 + h / 2}" text-anchor="middle" '
                     f'fill="#999">no data</text>')
        return parts
    lo, hi = log_range(values)
    xmin, xmax = min(xs), max(xs)

    def px(x):
        return x0 + (w / 2 if xmax == xmin else (x - xmin) / (xmax - xmin) * w)

    def py(y):
        return y0 + h - (math.log10(y) - lo) / (hi - lo) * h

    for d in range(lo, hi + 1):
        y = py(10 ** d)
        parts.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + w}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{x0 - 4}" y="{y + 4:.1f}" text-anchor="end">{si(10 ** d)}</text>')
    for x in xs:
        parts.append(f'<text x="{px(x):.1f}" y="{y0 + h + 14}" text-anchor="middle">{x}</text>')
    parts.append(f'<text x="{x0 + w / 2:.1f}" y="{y0 + h + 28}" text-anchor="middle" '
                 f'fill="#555">{esc(xlabel)}</text>')
    for label, colour, dash, pts in series:
        pts = sorted((x, y) for x, y in pts.items() if y > 0)
        if not pts:
            continue
        coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        width = 2.5 if label == OURS else 1.5
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" '
                     f'stroke-width="{width}"{dashed}><title>{esc(label)}</title></polyline>')
        for x, y in pts:
            parts.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5" fill="{colour}">'
                         f'<title>{esc(label)}: {si(y)} ops/s at {x}</title></circle>')
    return parts


def legend(x0, y0, entries, per_row):
    """Colour keys for `entries` ([(label, colour, dash)]), `per_row` to a row."""
    parts = []
    for i, (label, colour, dash) in enumerate(entries):
        x, y = x0 + (i % per_row) * 150, y0 + (i // per_row) * 18
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(f'<line x1="{x}" y1="{y}" x2="{x + 24}" y2="{y}" stroke="{colour}" '
                     f'stroke-width="2.5"{dashed}/>')
        parts.append(f'<text x="{x + 30}" y="{y + 4}">{esc(label)}</text>')
    return parts


def svg(width, height, parts):
    """A whole SVG document of `parts` on a white background."""
    return "\n".join(
        [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
         f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
         f'<rect width="{width}" height="{height}" fill="white"/>'] + parts + ["</svg>", ""])


def load_svg(fams):
    """Ops/s against load for every map, 16/64 bytes, a panel per operation and table size;
    None if there is nothing to plot."""
    sizes = [1 << 12, 1 << 20]
    data = {}  # (entries, op) -> map -> {load: ops/s}
    for family in ("core", "peers"):
        for entries in sizes:
            for load_, results in fams.get(family, {}).get((16, 64, entries), {}).items():
                for (op, m), ns in results.items():
                    # This crate's numbers come from `core`, unless only `peers` ran.
                    series = data.setdefault((entries, op), {}).setdefault(m, {})
                    if family == "core" or load_ not in series:
                        series[load_] = 1e9 / ns
    if not data:
        return None
    maps = ordered({m for s in data.values() for m in s}, MAPS)
    ops = ordered({op for (_, op) in data}, OPS)
    # The loads the benches measure, and any other found.
    loads = sorted({25, 50, 75, 90} | {ld for s in data.values() for pts in s.values() for ld in pts})
    pw, ph, left, gap_x, gap_y = 330, 170, 70, 110, 70
    top = 48 + 18 * ((len(maps) + 3) // 4) + 10
    parts = [f'<text x="{left}" y="22" font-size="14" font-weight="bold">Operations per second '
             f'against load, 16-byte keys, 64-byte values, one thread</text>']
    parts += legend(left, 48, [(m, *MAPS.get(m, ("#000", ""))) for m in maps], 4)
    for row, op in enumerate(ops):
        for col, entries in enumerate(sizes):
            x0, y0 = left + col * (pw + gap_x), top + 20 + row * (ph + gap_y)
            series = [(m, *MAPS.get(m, ("#000", "")), data.get((entries, op), {}).get(m, {}))
                      for m in maps]
            parts += panel(x0, y0, pw, ph, f"{op}, {power_of_two(entries)} entries", series,
                           loads, "load (%)")
    width = left + 2 * pw + gap_x + 20
    height = top + 20 + len(ops) * (ph + gap_y)
    return svg(width, height, parts)


def processes_svg(results):
    """Aggregate ops/s against processes, a line per workload (and linear scaling of one
    process's distinct reads, dotted); None if there is nothing to plot."""
    data = processes_data(results)
    if not data:
        return None
    workloads = ordered(data, WORKLOADS)
    colours = {w: WORKLOAD_COLOURS[i % len(WORKLOAD_COLOURS)] for i, w in enumerate(workloads)}
    ks = sorted({k for pts in data.values() for k in pts})
    series = [(w, colours[w], "", {k: 1e9 / ns for k, ns in data[w].items()}) for w in workloads]
    one = data.get("get_distinct", {}).get(1)
    if one:
        series.append(("get_distinct x processes", "#999", "2,3", {k: k * 1e9 / one for k in ks}))
    left, w, h = 70, 660, 360
    top = 48 + 18 * ((len(series) + 3) // 4) + 20
    parts = [f'<text x="{left}" y="22" font-size="14" font-weight="bold">Aggregate operations '
             f'per second against processes, one map in shared memory</text>']
    parts += legend(left, 48, [(s[0], s[1], s[2]) for s in series], 4)
    parts += panel(left, top, w, h, "", series, ks, "processes")
    return svg(left + w + 30, top + h + 50, parts)


# ---------------------------------------------------------------- the whole report


def machine():
    """The CPU model, the processors, the processors this process may use."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return model, os.cpu_count(), usable


def main():
    """Reads the estimates, writes the README and the plots."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], usage=USAGE)
    parser.add_argument("dirs", nargs="*", type=Path, help="criterion's output directories")
    parser.add_argument("--out", type=Path, default=ROOT / "benches",
                        help="where README.md and the SVGs go (default: benches/)")
    parser.add_argument("--preliminary", action="store_true",
                        help="mark the README as a preliminary run")
    args = parser.parse_args()
    dirs = args.dirs or default_dirs()
    groups, intervals, newest = load(dirs)
    if not groups:
        # Nothing to report: keep whatever README and plots there are.
        sys.exit(f"no criterion estimates under {', '.join(map(str, dirs))}: run the benches first")
    fams, ratio_fams = families(groups)
    notes, written = [], []

    model, cpus, usable = machine()
    today = datetime.date.today().isoformat()
    ran = datetime.date.fromtimestamp(newest).isoformat() if newest else "never"
    out = ["# Benchmarks", "", f"Usage: `{USAGE}` (writes this file, `load.svg` and "
           "`processes.svg` from criterion's saved estimates).", ""]
    if args.preliminary:
        out += [f"> **Preliminary run ({ran})**: measured on a shared, noisy machine; the "
                "numbers show that the pipeline works, not what the map does. The final "
                "numbers come from a full run on a quiet machine.", ""]
    out += [
        "## Machine and commands",
        "",
        f"- CPU: {model}; {cpus} processors ({usable} usable by this process)",
        f"- estimates last written {ran}; report generated {today}",
        f"- estimates read from: {', '.join(f'`{d}`' for d in dirs)}",
        "",
        "```sh",
    ]
    benches = ordered({BENCH_OF[g.split("-")[0]] for g in groups if g.split("-")[0] in BENCH_OF},
                      ["core", "peers", "processes"])
    env = " ".join(f"{v}={os.environ[v]}" for v in
                   ("CARGO_TARGET_DIR", "CRITERION_HOME", "SHARED_HASHMAP_BENCH_PROCESSES")
                   if os.environ.get(v))
    prefix = env + " " if env else ""
    out += [f"{prefix}cargo bench --bench {b}" for b in benches or ["core", "peers", "processes"]]
    out += [f"{prefix}python3 benches/report.py " + " ".join(sys.argv[1:]), "```", ""]
    out += ["`BENCH_TABLES=64x1024,16x64-1m` (parts of the table labels `KxV-SIZE-LOAD`, "
            "comma-separated) limits the core and peers benches to those tables; the report "
            "keeps the other tables' estimates from their last run.", ""]

    sections = [
        ("core", "core: single thread, against std and hashbrown",
         f"`{OURS}`, `std::collections::HashMap` (SipHash) and `hashbrown` (foldhash, fixed "
         "seed) on the same keys; every get copies the value out (`cargo bench --bench core`)."),
        ("peers", "peers: heapless, dashmap and LMDB",
         "`heapless::FnvIndexMap` (2^12 entries only), `dashmap` (foldhash) from one thread, and "
         "LMDB through heed with a transaction per operation (`lmdb`) or per 60 (`lmdb-batched`)"
         ", its files in /dev/shm (`cargo bench --bench peers`)."),
        ("threads2", "threads2: two threads on one map",
         "Time per operation of both threads together, against dashmap "
         "(`cargo bench --bench peers`)."),
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    out += targets_section(ratio_fams)
    out += method_section(groups.get(CALIBRATION, {}))
    for family, title, intro in sections:
        if family in fams:
            out += family_section(title, intro, fams[family], ratio_fams.get(family, {}))
        else:
            notes.append(f"no `{family}-*` groups: run `cargo bench --bench {BENCH_OF[family]}`")
        if family == "peers":
            plot = load_svg(fams)
            if plot:
                (args.out / "load.svg").write_text(plot)
                written.append("load.svg")
                out += ["## Load", "", "Operations per second against load for every map, "
                        "16-byte keys, 64-byte values (`core` and `peers`; this crate's from "
                        "`core`); logarithmic scale.", "",
                        "![operations per second against load](load.svg)", ""]
            else:
                notes.append("no 16/64 `core-*` or `peers-*` groups: `load.svg` not written")
    if "churn" in groups:
        out += churn_section(groups["churn"], groups.get(CHURN_RATIO, {}))
    else:
        notes.append("no `churn` group: run `cargo bench --bench core`")
    if CLIFF in groups:
        out += cliff_section(groups[CLIFF])
    else:
        notes.append(f"no `{CLIFF}` group: run `cargo bench --bench core`")
    if "processes" in groups:
        out += processes_section(groups["processes"], groups.get(SCALING, {}), intervals)
    else:
        notes.append("no `processes` group: run `cargo bench --bench processes`")

    plot = processes_svg(groups.get("processes", {}))
    if plot:
        (args.out / "processes.svg").write_text(plot)
        written.append("processes.svg")
    else:
        notes.append("no `processes` group: `processes.svg` not written")
    if notes:
        out += ["## Skipped", ""] + [f"- {n}" for n in notes] + [""]
    (args.out / "README.md").write_text("\n".join(out))
    written.append("README.md")
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"wrote {', '.join(str(args.out / w) for w in written)}")


if __name__ == "__main__":
    main()
