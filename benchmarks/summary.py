"""Summarise benchmark runs: per-run records, the RESULTS.md tables and the learning-curve plots.

`summarize(root, suites)` does three things, in this order:

1. every run directory `root/runs/<suite>/<label>/<env>/seed<S>/` with a `meta.json` is reduced to
   a record `root/records/<suite>/<label>/<env>/seed<S>.json` (its meta plus every episode's
   (step, return) from the TensorBoard log and the last `charts/SPS`). The records are small and
   committed, so the tables and plots can be rebuilt on a checkout without the raw runs;
2. `root/RESULTS.md` is written from all records: one table per suite, the machine under it, then
   every fragment `root/results/*.md` in name order;
3. `root/plots/<suite>__<env>.png`: the 20-episode rolling mean of the return against the step,
   mean ± std over seeds on a common grid, with the random baseline of the same env as a line.
"""

import json
from pathlib import Path

import numpy as np

from benchmarks.machine import describe
from benchmarks.suite import Suite, safe_name

WINDOW = 20
"""episodes in the rolling mean (the "last-20" return and the threshold test)"""
REGENERATE = "python -m benchmarks all --workers 2"
RANDOM_SCRIPT = "random_baseline.py"


# ---------------------------------------------------------------- reading runs


def read_scalars(run_dir: Path, wall_time: bool = False) -> dict:
    """All scalars of the event files under `run_dir` (any depth): {tag: [(step, value), ...]} by step;
    with `wall_time`, {tag: [(step, seconds since the first event, value), ...]}. The project's one
    TensorBoard reader: the tests and every benchmark use it."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    scalars: dict = {}
    for event_file in sorted(run_dir.rglob("events.out.tfevents.*")):
        acc = EventAccumulator(str(event_file), size_guidance={"scalars": 0})
        acc.Reload()
        start = acc.FirstEventTimestamp()
        for tag in acc.Tags()["scalars"]:
            for e in acc.Scalars(tag):
                point = (int(e.step), round(e.wall_time - start, 1), float(e.value))
                scalars.setdefault(tag, []).append(point if wall_time else (point[0], point[2]))
    for tag in scalars:
        scalars[tag].sort(key=lambda point: point[0])  # stable: episodes ending in the same step keep their order
    return scalars


def extract_record(run_dir: Path) -> dict:
    meta = json.loads((run_dir / "meta.json").read_text())
    scalars = read_scalars(run_dir)
    episodes = scalars.get(meta.get("return_tag", "charts/episodic_return"), [])
    sps = scalars.get("charts/SPS", [])
    last_step = max((values[-1][0] for values in scalars.values() if values), default=0)
    return {
        "meta": meta,
        "steps": [s for s, _ in episodes],
        "returns": [round(v, 6) for _, v in episodes],
        "sps": sps[-1][1] if sps else None,
        "last_step": last_step,
    }


def refresh_records(root: Path) -> int:
    """Rebuild the records of every run present under `root/runs`; returns how many."""
    count = 0
    for meta_path in sorted((root / "runs").glob("*/*/*/seed*/meta.json")):
        run_dir = meta_path.parent
        rel = run_dir.relative_to(root / "runs")
        record_path = root / "records" / rel.parent / f"{rel.name}.json"
        record_path.parent.mkdir(parents=True, exist_ok=True)
        record_path.write_text(json.dumps(extract_record(run_dir), separators=(",", ":")) + "\n")
        count += 1
    return count


def load_records(root: Path) -> list:
    return [json.loads(p.read_text()) for p in sorted((root / "records").glob("*/*/*/seed*.json"))]


# ---------------------------------------------------------------- statistics


def rolling_mean(values, window: int = WINDOW) -> np.ndarray:
    """Mean of each full window of `window` consecutive values (len(values) - window + 1 of them)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < window:
        return np.empty(0)
    cumsum = np.concatenate([[0.0], np.cumsum(values)])
    return (cumsum[window:] - cumsum[:-window]) / window


def first_step_reaching(steps, returns, threshold: float, window: int = WINDOW):
    """The step of the first episode at which the mean of the last `window` episodes is >= threshold."""
    means = rolling_mean(returns, window)
    hits = np.flatnonzero(means >= threshold - 1e-9)
    return int(steps[hits[0] + window - 1]) if len(hits) else None


def seed_stats(record: dict, threshold) -> dict:
    returns = np.asarray(record["returns"], dtype=np.float64)
    meta = record["meta"]
    return {
        "seed": meta["seed"],
        "episodes": len(returns),
        "last": float(returns[-WINDOW:].mean()) if len(returns) else float("nan"),
        "all": float(returns.mean()) if len(returns) else float("nan"),
        "reached": first_step_reaching(record["steps"], returns, threshold) if threshold is not None else None,
        "sps": record["sps"],
        "wall_s": meta["wall_s"],
        "peak_rss_mib": meta["peak_rss_mib"],
        "exit_code": meta["exit_code"],
        "last_step": record["last_step"],
    }


def mean_std(values) -> tuple:
    """Mean and population standard deviation (ddof=0) over seeds."""
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()), float(values.std())


# ---------------------------------------------------------------- grouping


def group_records(records: list, suites: dict) -> dict:
    """{suite: {label: {env: [record sorted by seed]}}}, suites and labels in definition order."""
    groups: dict = {}
    for record in records:
        m = record["meta"]
        groups.setdefault(m["suite"], {}).setdefault(m["label"], {}).setdefault(m["env_id"], []).append(record)

    def order(name, members):
        labels = [s.label for s in members] if members else []
        return labels.index(name) if name in labels else len(labels)

    ordered = {}
    for suite_name in sorted(groups, key=lambda n: (n not in suites, list(suites).index(n) if n in suites else 0, n)):
        members = suites.get(suite_name, [])
        by_label = groups[suite_name]
        ordered[suite_name] = {}
        for label in sorted(by_label, key=lambda lb: (order(lb, members), lb)):
            env_order = [e for m in members if m.label == label for e in m.env_ids]
            envs = by_label[label]
            ordered[suite_name][label] = {
                env: sorted(envs[env], key=lambda r: r["meta"]["seed"])
                for env in sorted(envs, key=lambda e: (env_order.index(e) if e in env_order else len(env_order), e))
            }
    return ordered


def threshold_for(record: dict, suites: dict):
    """The current suite definition's threshold for this env, else the one recorded at run time."""
    m = record["meta"]
    member = next((s for s in suites.get(m["suite"], []) if s.label == m["label"] and m["env_id"] in s.env_ids), None)
    thresholds = member.thresholds if member else m.get("thresholds", {})
    return thresholds.get(m["env_id"])


# ---------------------------------------------------------------- the markdown


def fmt(x, digits: int = 2) -> str:
    return "n/a" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.{digits}f}"


def fmt_steps(values) -> str:
    return ", ".join("not reached" if v is None else f"{v:,}" for v in values)


def suite_table(suite_name: str, labels: dict, suites: dict) -> str:
    lines = [
        f"## Suite `{suite_name}`",
        "",
        f"Run with `python -m benchmarks run {suite_name} --workers N`; each row's command is "
        "`python SCRIPT --env-id ENV --seed S ARGS`.",
        "",
        f"| label | script and args | env | seeds | episodes per seed | last-{WINDOW} return, mean ± std over seeds "
        f"| last-{WINDOW} return per seed | all-episode mean ± std over seeds | threshold "
        f"| first step with {WINDOW}-episode mean ≥ threshold, per seed | steps per run | SPS (mean) "
        "| wall time per run (mean) | peak memory (max) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    machines, workers, dates = [], set(), []
    for label, envs in labels.items():
        for env_id, records in envs.items():
            threshold = threshold_for(records[0], suites)
            stats = [seed_stats(r, threshold) for r in records]
            meta = records[0]["meta"]
            for r in records:
                desc = describe(r["meta"]["machine"])
                if desc not in machines:
                    machines.append(desc)
                workers.add(r["meta"]["workers"])
                dates += [r["meta"]["start"], r["meta"]["end"]]
            failed = [s for s in stats if s["exit_code"] != 0]
            last_mean, last_std = mean_std([s["last"] for s in stats])
            all_mean, all_std = mean_std([s["all"] for s in stats])
            sps = [s["sps"] for s in stats if s["sps"] is not None]
            script = " ".join([meta["script"], *meta.get("args", [])])
            row = [
                label,
                f"`{script}`",
                env_id,
                ", ".join(str(s["seed"]) for s in stats),
                ", ".join(str(s["episodes"]) for s in stats)
                if len({s["episodes"] for s in stats}) > 1
                else str(stats[0]["episodes"]),
                f"**{fmt(last_mean)} ± {fmt(last_std)}**",
                ", ".join(fmt(s["last"]) for s in stats),
                f"{fmt(all_mean)} ± {fmt(all_std)}",
                "—" if threshold is None else f"{threshold:g}",
                "—" if threshold is None else fmt_steps([s["reached"] for s in stats]),
                ", ".join(f"{s['last_step']:,}" for s in stats)
                if len({s["last_step"] for s in stats}) > 1
                else f"{stats[0]['last_step']:,}",
                f"{np.mean(sps):,.0f}" if sps else "n/a",
                f"{np.mean([s['wall_s'] for s in stats]):.1f} s",
                f"{max(s['peak_rss_mib'] for s in stats):.0f} MiB",
            ]
            if failed:
                row[0] += " (FAILED: " + ", ".join(f"seed {s['seed']} exit {s['exit_code']}" for s in failed) + ")"
            lines.append("| " + " | ".join(row) + " |")
    lines += [
        "",
        f"Machine: {'; '.join(machines)}.  ",
        f"Workers: {', '.join(str(w) for w in sorted(workers))} run(s) at a time; runs between {min(dates)} and {max(dates)}.",
        "",
    ]
    return "\n".join(lines)


def write_results(root: Path, suites: dict, grouped: dict) -> Path:
    parts = [
        "<!-- Generated by `python -m benchmarks summarize`; do not edit by hand. -->",
        "# Benchmark results",
        "",
        "Generated by `python -m benchmarks summarize` from the run records in `benchmarks/records/` "
        f"(rerun every suite and speed benchmark, then summarize: `{REGENERATE}`).",
        "",
        f"Per script and env: the mean of the last {WINDOW} episodes' returns of each seed, then the mean ± "
        "standard deviation (ddof=0) of those over seeds; the first environment step (summed over "
        f"parallel envs) at which the mean of the last {WINDOW} episodes reaches the suite's threshold; "
        "SPS is the script's last `charts/SPS` (steps per second since its start); wall time is the "
        "subprocess's; peak memory is the largest resident set of a process of the run. "
        "Returns are those logged under the suite's return tag (`charts/episodic_return`: whole games, "
        "unclipped, for Atari).",
        "",
    ]
    if not grouped:
        parts.append("No runs recorded yet: `python -m benchmarks run SUITE` first.\n")
    for suite_name, labels in grouped.items():
        parts.append(suite_table(suite_name, labels, suites))
    plots = sorted((root / "plots").glob("*.png"))
    if plots:
        parts += ["## Learning curves", ""]
        parts += [f"![{p.stem}](plots/{p.name})" for p in plots]
        parts.append("")
    for fragment in sorted((root / "results").glob("*.md")):
        parts += ["---", "", fragment.read_text().rstrip() + "\n"]
    out = root / "RESULTS.md"
    out.write_text("\n".join(parts))
    return out


# ---------------------------------------------------------------- plots


def curve_on_grid(records: list, points: int = 200):
    """Common step grid and the rolling-mean curve of each seed on it (None when there is no overlap)."""
    curves = []
    for r in records:
        means = rolling_mean(r["returns"])
        if len(means) == 0:
            return None
        curves.append((np.asarray(r["steps"][WINDOW - 1 :], dtype=np.float64), means))
    lo, hi = max(c[0][0] for c in curves), min(c[0][-1] for c in curves)
    if hi <= lo:
        return None
    grid = np.linspace(lo, hi, points)
    return grid, np.stack([np.interp(grid, s, m) for s, m in curves])


def random_lines(grouped: dict) -> dict:
    """{env: [(label, mean over all episodes and seeds, episodes)]} from the random-baseline runs."""
    lines: dict = {}
    for labels in grouped.values():
        for label, envs in labels.items():
            for env_id, records in envs.items():
                if Path(records[0]["meta"]["script"]).name != RANDOM_SCRIPT:
                    continue
                returns = np.concatenate([np.asarray(r["returns"], dtype=np.float64) for r in records])
                if len(returns):
                    lines.setdefault(env_id, []).append((label, float(returns.mean()), len(returns)))
    return lines


def draw_plots(root: Path, suites: dict, grouped: dict) -> list:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plots (pip install -e '.[bench]')")
        return []
    plots_dir = root / "plots"
    plots_dir.mkdir(parents=True, exist_ok=True)
    for old in plots_dir.glob("*__*.png"):  # this function's plots (other writers' plots have no "__")
        old.unlink()
    baselines = random_lines(grouped)
    written = []
    for suite_name, labels in grouped.items():
        env_ids = []
        for label, envs in labels.items():
            env_ids += [e for e in envs if e not in env_ids]
        for env_id in env_ids:
            members = [(label, envs[env_id]) for label, envs in labels.items() if env_id in envs]
            members = [(lb, recs) for lb, recs in members if Path(recs[0]["meta"]["script"]).name != RANDOM_SCRIPT]
            if not members:
                continue
            fig, ax = plt.subplots(figsize=(7, 4.2))
            drawn, thresholds = False, set()
            for label, records in members:
                curve = curve_on_grid(records)
                if curve is None:
                    continue
                grid, ys = curve
                mean, std = ys.mean(axis=0), ys.std(axis=0)
                ax.plot(grid, mean, label=f"{label} ({len(records)} seeds)")
                ax.fill_between(grid, mean - std, mean + std, alpha=0.25)
                drawn = True
                if threshold_for(records[0], suites) is not None:
                    thresholds.add(threshold_for(records[0], suites))
            for threshold in sorted(thresholds):
                ax.axhline(threshold, color="grey", linestyle=":", linewidth=1, label=f"threshold {threshold:g}")
            for style, (label, value, n) in zip(["--", "-.", ":"], baselines.get(env_id, [])):
                ax.axhline(
                    value, color="black", linestyle=style, linewidth=1, label=f"{label}: {value:.1f} ({n} episodes)"
                )
            if not drawn:
                plt.close(fig)
                continue
            ax.set_xlabel("environment steps")
            ax.set_ylabel(f"episodic return ({WINDOW}-episode mean)")
            ax.set_title(f"{env_id}: {suite_name} (mean ± std over seeds)")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8, loc="best")
            fig.tight_layout()
            path = plots_dir / f"{suite_name}__{safe_name(env_id)}.png"
            fig.savefig(path, dpi=100, metadata={"Software": None})
            plt.close(fig)
            written.append(path)
    return written


def summarize(root: Path, suites: dict, plots: bool = True) -> Path:
    refreshed = refresh_records(root)
    records = load_records(root)
    grouped = group_records(records, suites)
    if plots:
        draw_plots(root, suites, grouped)
    out = write_results(root, suites, grouped)
    print(f"{refreshed} run(s) read, {len(records)} record(s) summarised into {out}")
    return out


__all__ = ["Suite", "summarize", "rolling_mean", "first_step_reaching", "read_scalars", "WINDOW"]
