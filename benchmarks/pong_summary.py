"""A3C on Pong: time and steps to a score of 18, from the runs of `python -m benchmarks run a3c_pong`.

For each seed, from its TensorBoard log: the wall time (from the writer's first event, i.e. the
start of the run) and the env steps at which the training 20-game mean (`charts/episodic_return`,
whole games) first reaches 18, and at which a greedy test game (`eval/episodic_return`, whole games
only: games cut by the stuck rule are logged apart) first scores 18 or more; then the final
figures. Writes a compact record per seed (`benchmarks/records/a3c_pong_curves/seed<S>.json`:
step, seconds, value of every point), the fragment `benchmarks/results/a3c_pong.md` and the plot
`benchmarks/plots/a3c_pong_curves.png` (return against wall time and against steps).
With no run directories it rebuilds the fragment and plot from the committed records.

    python -m benchmarks.pong_summary
"""

import json
from pathlib import Path

import numpy as np

from benchmarks.machine import describe
from benchmarks.suite import BENCH_DIR
from benchmarks.summary import read_scalars

RUNS = BENCH_DIR / "runs" / "a3c_pong" / "a3c-2proc" / "PongDeterministic-v4"
RECORDS = BENCH_DIR / "records" / "a3c_pong_curves"
TARGET = 18.0
WINDOW = 20
COMMAND = "python -m benchmarks run a3c_pong --workers 1 && python -m benchmarks.pong_summary"
TAGS = {"train": "charts/episodic_return", "test": "eval/episodic_return", "cut": "eval/cut_return"}


def read_run(run_dir: Path) -> dict:
    """{name: [(step, seconds since the run started, value), ...]} for the tags above."""
    scalars = read_scalars(run_dir, wall_time=True)
    return {name: scalars.get(tag, []) for name, tag in TAGS.items()}


def first_reach(points: list, window: int, target: float = TARGET) -> tuple:
    """(step, seconds) of the first point at which the mean of the last `window` values reaches `target`."""
    values = [v for _, _, v in points]
    for i in range(window - 1, len(points)):
        if np.mean(values[i - window + 1 : i + 1]) >= target:
            return points[i][0], points[i][1]
    return None, None


def summarize_seed(seed: int, curves: dict) -> dict:
    train, test = curves["train"], curves["test"]
    return {
        "seed": seed,
        "train_reach": first_reach(train, WINDOW),
        "test_reach": first_reach(test, 1),
        "final_train": float(np.mean([v for _, _, v in train[-WINDOW:]])) if train else float("nan"),
        "final_test": [v for _, _, v in test[-3:]],
        "cut_games": len(curves["cut"]),
        "last_step": max((p[0] for c in curves.values() for p in c), default=0),
        "seconds": max((p[1] for c in curves.values() for p in c), default=0.0),
    }


def fmt_reach(reach: tuple) -> str:
    step, seconds = reach
    return "not reached" if step is None else f"{step:,} steps, {seconds / 60:.1f} min"


def main() -> None:
    RECORDS.mkdir(parents=True, exist_ok=True)
    meta = {}
    for run_dir in sorted(RUNS.glob("seed*")):
        if (run_dir / "meta.json").exists():
            meta = json.loads((run_dir / "meta.json").read_text())
            record = {"meta": meta, "curves": read_run(run_dir)}
            (RECORDS / f"{run_dir.name}.json").write_text(json.dumps(record))
    records = {int(p.stem[4:]): json.loads(p.read_text()) for p in sorted(RECORDS.glob("seed*.json"))}
    rows = [summarize_seed(seed, r["curves"]) for seed, r in sorted(records.items())]
    machine = describe(next(iter(records.values()))["meta"].get("machine", {})) if records else "n/a"
    lines = [
        "| seed | training 20-game mean first >= 18 | first greedy whole game >= 18 | final training 20-game mean "
        "| last greedy games | cut test games | steps run | wall time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['seed']} | {fmt_reach(r['train_reach'])} | {fmt_reach(r['test_reach'])} | {r['final_train']:.2f} "
            f"| {', '.join(f'{v:g}' for v in r['final_test'])} | {r['cut_games']} | {r['last_step']:,} "
            f"| {r['seconds'] / 60:.1f} min |"
        )
    body = "\n".join(lines)
    text = f"## A3C on Pong, 2 processes\n\n`{COMMAND}`\n\n{body}\n\nMachine: {machine}\n"
    (BENCH_DIR / "results" / "a3c_pong.md").write_text(text)
    print(text)
    plot(records)


def rolling_mean(values: list) -> list:
    """The mean of the last WINDOW values (fewer at the start) at each point."""
    return [float(np.mean(values[max(0, i - WINDOW + 1) : i + 1])) for i in range(len(values))]


def plot_a3c_seeds(ax) -> None:
    """The A3C Pong seeds' training 20-game means against agent steps (millions), dotted grey: the
    comparison in the A2C Pong plots."""
    for i, path in enumerate(sorted(RECORDS.glob("seed*.json"))):
        train = json.loads(path.read_text())["curves"]["train"]
        label = "a3c_pong_hogwild.py, 2 processes (3 seeds)" if i == 0 else None
        rolling = rolling_mean([v for _, _, v in train])
        ax.plot([p[0] / 1e6 for p in train], rolling, color="grey", linestyle=":", linewidth=1, label=label)


def finish_figure(fig, axes, xlabels: list, ylabel: str, legend_ax, title: str, name: str, **legend) -> None:
    """The target score as a dashed line, the axis labels, a light grid, the legend and the title;
    saved as `benchmarks/plots/<name>`."""
    for ax, xlabel in zip(axes, xlabels):
        ax.axhline(TARGET, color="black", linestyle="--", linewidth=1)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(ylabel)
    legend_ax.legend(**legend)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(BENCH_DIR / "plots" / name, dpi=100)


def plot(records: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for seed, record in sorted(records.items()):
        train, test = record["curves"]["train"], record["curves"]["test"]
        rolling = rolling_mean([v for _, _, v in train])
        for ax, col, scale in ((axes[0], 1, 60.0), (axes[1], 0, 1e6)):
            (line,) = ax.plot([p[col] / scale for p in train], rolling, label=f"seed {seed}: training, 20-game mean")
            ax.plot(
                [p[col] / scale for p in test],
                [p[2] for p in test],
                "o",
                markersize=3,
                color=line.get_color(),
                label=f"seed {seed}: greedy test game",
            )
    xlabels = ["wall time (minutes)", "env steps (millions, all workers)"]
    title = "a3c_pong_hogwild.py, PongDeterministic-v4, 2 worker processes on a 2-core CPU"
    finish_figure(
        fig,
        axes,
        xlabels,
        "Pong score (whole games)",
        axes[1],
        title,
        "a3c_pong_curves.png",
        fontsize=7,
        loc="lower right",
    )


if __name__ == "__main__":
    main()
