"""A2C on Pong, the long runs: the article's defaults to the script's 10M steps, one factor at a time
against them to 3M steps, and candidate new defaults to 10M (the factors and candidates of
`benchmarks/suites/a2c.py`, seed 1 each).

Reads the runs of `python -m benchmarks run a2c_pong_10m --workers 1`, `python -m benchmarks run
a2c_pong_factors --workers 1` and `python -m benchmarks run a2c_pong_candidates --workers 1` (run, or
carried on with `--resume`, in their directories under `benchmarks/runs/`; a run that was stopped
counts up to its last logged step) and writes:
- a compact record per run, `benchmarks/records/a2c_pong_long/<label>.json`: every whole game's
  (step, score), and per 50k steps the mean policy entropy, the median gradient norm before the clip
  and the mean explained variance of the critic;
- `benchmarks/results/a2c_pong_long.md`: the training 20-game mean at fixed steps, the first step at
  which it reaches -18, 0 and 18, the entropy, and how far each run has got;
- `benchmarks/plots/a2c_pong_long.png`: the 20-game mean and the entropy against steps, with the
  earlier 3M-step default run and the A3C Pong seeds for comparison.
With no run directories it rebuilds the table and the plot from the committed records.

    python -m benchmarks.a2c_pong_long
"""

import json
import math
from pathlib import Path

import numpy as np

from benchmarks.machine import describe, machine_info
from benchmarks.pong_summary import WINDOW, finish_figure, first_reach, plot_a3c_seeds, rolling_mean
from benchmarks.suite import BENCH_DIR
from benchmarks.suites.a2c import CANDIDATES, FACTORS
from benchmarks.summary import read_scalars

ENV = "PongNoFrameskip-v4"
RUNS = {"defaults": BENCH_DIR / "runs" / "a2c_pong_10m" / "a2c_atari_lstm" / ENV / "seed1"}
RUNS.update({label: BENCH_DIR / "runs" / "a2c_pong_factors" / label / ENV / "seed1" for label in FACTORS})
RUNS.update({label: BENCH_DIR / "runs" / "a2c_pong_candidates" / label / ENV / "seed1" for label in CANDIDATES})
BUDGETS = {
    "defaults": 10_000_000,
    **{label: 3_000_000 for label in FACTORS},
    **{label: 10_000_000 for label in CANDIDATES},
}
CHANGES = {**FACTORS, **CANDIDATES}
RECORDS = BENCH_DIR / "records" / "a2c_pong_long"
SHORT_RUN = BENCH_DIR / "records" / "a2c_pong_curves" / "defaults.json"  # the earlier 3M-step default run
COMMAND = " && ".join(
    [
        f"python -m benchmarks run {suite} --workers 1"
        for suite in ("a2c_pong_10m", "a2c_pong_factors", "a2c_pong_candidates")
    ]
    + ["python -m benchmarks.a2c_pong_long"]
)
AT = [1_000_000, 2_000_000, 2_500_000, 3_000_000, 4_000_000, 5_000_000, 6_000_000, 8_000_000, 10_000_000]
ENTROPY_AT = [1_000_000, 2_000_000, 3_000_000, 5_000_000, 7_000_000, 10_000_000]
LEVELS = [-18.0, 0.0, 18.0]
BIN = 50_000


def binned(points: list, reduce) -> list:
    """[(bin end, reduce(values in the bin))] for the 50k-step bins that hold points."""
    bins: dict = {}
    for step, value in points:
        bins.setdefault((step - 1) // BIN, []).append(value)
    return [((b + 1) * BIN, float(reduce(values))) for b, values in sorted(bins.items())]


def read_run(label: str, run_dir: Path) -> dict:
    scalars = read_scalars(run_dir)
    last = max((points[-1][0] for points in scalars.values() if points), default=0)
    return {
        "label": label,
        "flags": CHANGES.get(label, []),
        "budget": BUDGETS[label],
        "last_step": last,
        "train": scalars.get("charts/episodic_return", []),
        "entropy": binned(scalars.get("losses/entropy", []), np.mean),
        "grad_norm": binned(scalars.get("losses/grad_norm", []), np.median),
        "explained_variance": binned(scalars.get("losses/explained_variance", []), np.nanmean),
        "eval": [v for _, v in scalars.get("eval/episodic_return", [])],
        "machine": machine_info(),
    }


def mean_at(record: dict, step: int) -> float:
    """The mean of the last WINDOW whole games that ended by `step` (nan past the run's last step)."""
    scores = [v for s, v in record["train"] if s <= step]
    return float(np.mean(scores[-WINDOW:])) if record["last_step"] >= step and len(scores) >= WINDOW else math.nan


def value_at(series: list, step: int) -> float:
    """The value of the bin that ends at `step` (nan when the run has not got there)."""
    return next((v for s, v in series if s == step), math.nan)


def row(record: dict) -> str:
    means = " / ".join("—" if math.isnan(m) else f"{m:.1f}" for m in (mean_at(record, s) for s in AT))
    reach = []
    for level in LEVELS:
        step, _ = first_reach([(s, 0, v) for s, v in record["train"]], WINDOW, level)
        reach.append("—" if step is None else f"{step / 1e6:.2f}M")
    entropy = " / ".join(
        "—" if math.isnan(v) else f"{v:.3f}" for v in (value_at(record["entropy"], s) for s in ENTROPY_AT)
    )
    norms = " / ".join(
        "—" if math.isnan(v) else f"{v:.2f}" for v in (value_at(record["grad_norm"], s) for s in ENTROPY_AT)
    )
    flags = " ".join(record["flags"]) or "(the article's defaults)"
    done = "done" if record["last_step"] >= record["budget"] else "stopped, to be resumed"
    sampled = f"{np.mean(record['eval']):.1f}" if record["eval"] else "—"
    return (
        f"| {flags} | {record['last_step']:,} of {record['budget'] / 1e6:g}M ({done}) | {means} | "
        f"{' | '.join(reach)} | {entropy} | {norms} | {sampled} |"
    )


def main() -> None:
    RECORDS.mkdir(parents=True, exist_ok=True)
    for label, run_dir in RUNS.items():
        if run_dir.exists():
            (RECORDS / f"{label}.json").write_text(json.dumps(read_run(label, run_dir)))
    records = [
        json.loads((RECORDS / f"{label}.json").read_text()) for label in RUNS if (RECORDS / f"{label}.json").exists()
    ]
    at = " / ".join(f"{s / 1e6:g}M" for s in AT)
    at_entropy = " / ".join(f"{s / 1e6:g}M" for s in ENTROPY_AT)
    lines = [
        f"| run (seed 1) | steps run | training 20-game mean at {at} | "
        + " | ".join(f"first 20-game mean >= {level:g}" for level in LEVELS)
        + f" | policy entropy, the 50k steps before {at_entropy} | median grad norm before the clip, same bins "
        "| saved model, 10 games sampled from its policy |",
        "|---|---|---|" + "---|" * len(LEVELS) + "---|---|---|",
    ]
    lines += [row(record) for record in records]
    text = (
        f"## A2C on Pong: the defaults to 10M steps, one factor at a time to 3M, candidates to 10M\n\n`{COMMAND}`\n\n"
        + "\n".join(lines)
        + "\n\nTraining 20-game mean: the mean score of the last 20 whole games (random play: about -20.5). "
        "Entropy: the mean of `losses/entropy` (uniform over Pong's 6 actions: ln 6 = 1.792). A stopped run "
        "is carried on with `--resume` from its directory; its figures stop at its last logged step. "
        f"The runs shared the 2 cores with each other and with other work: compare steps, not times. "
        f"Machine: {describe(records[0]['machine'])}\n"
    )
    (BENCH_DIR / "results" / "a2c_pong_long.md").write_text(text)
    print(text)
    plot(records)


def plot(records: list) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for record in records:
        name = " ".join(record["flags"]) or "defaults (10M run)"
        width = 2 if not record["flags"] else 1
        rolling = rolling_mean([v for _, v in record["train"]])
        axes[0].plot([s / 1e6 for s, _ in record["train"]], rolling, label=name, linewidth=width)
        axes[1].plot([s / 1e6 for s, _ in record["entropy"]], [v for _, v in record["entropy"]], linewidth=width)
    if SHORT_RUN.exists():  # the earlier 3M-step run with the defaults, seed 1
        short = json.loads(SHORT_RUN.read_text())
        train, entropy = short["train"], binned(short["entropy"], np.mean)
        steps = [p[0] / 1e6 for p in train]
        axes[0].plot(
            steps,
            rolling_mean([p[2] for p in train]),
            color="black",
            linewidth=1,
            alpha=0.5,
            label="defaults (earlier 3M run)",
        )
        axes[1].plot([s / 1e6 for s, _ in entropy], [v for _, v in entropy], color="black", linewidth=1, alpha=0.5)
    plot_a3c_seeds(axes[0])  # A3C's 3 seeds against steps, for comparison
    axes[1].axhline(math.log(6), color="black", linestyle="--", linewidth=1)
    axes[1].set_xlabel("agent steps (millions, all games)")
    axes[1].set_ylabel("policy entropy (50k-step mean; dashed: uniform, ln 6)")
    axes[1].grid(alpha=0.3)
    xlabels, ylabel = ["agent steps (millions, all games)"], "Pong score, 20-game mean (whole games)"
    title = "a2c_atari_lstm.py, PongNoFrameskip-v4, seed 1, 2-core CPU: the long runs"
    finish_figure(fig, axes[:1], xlabels, ylabel, axes[0], title, "a2c_pong_long.png", fontsize=8, loc="upper left")


if __name__ == "__main__":
    main()
