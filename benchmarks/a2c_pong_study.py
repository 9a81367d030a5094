"""A2C on Pong: the long run with the article's defaults, and why A2C learns Pong more slowly than A3C.

Reads the runs of `python -m benchmarks run a2c_pong --workers 1` (the defaults, 3M steps) and of
`python -m benchmarks run a2c_pong_study --workers 1` (one default changed per run, 750k steps, the
same seed), and writes:
- a compact record per run, `benchmarks/records/a2c_pong_curves/<label>.json`: every whole game's
  (step, seconds since the start, score), the logged `losses/entropy` and `losses/grad_norm` (the norm
  before clipping) and the scores of the saved model's final games (sampled from its policy);
- `benchmarks/results/a2c_pong.md`: for each run the training 20-game mean at 250k, 500k, 750k (and
  for the long run 1.5M and 3M) steps, the first step and minute at which it reaches -18 (the first sign of learning) and 18, the policy
  entropy over the last 100k steps up to 750k, the share of updates whose gradient norm was above
  the run's clip, and the throughput;
- `benchmarks/plots/a2c_pong_curves.png`: the 20-game mean against steps and against
  wall time, every run in one figure, with the A3C Pong suite's seeds against steps for comparison.
With no run directories it rebuilds the fragment and the plot from the committed records.

    python -m benchmarks.a2c_pong_study
"""

import json
import math
from pathlib import Path

import numpy as np

from benchmarks.machine import describe
from benchmarks.pong_summary import TARGET, WINDOW, finish_figure, first_reach, plot_a3c_seeds, rolling_mean
from benchmarks.suite import BENCH_DIR
from benchmarks.suites.a2c import STUDY
from benchmarks.summary import read_scalars

ENV = "PongNoFrameskip-v4"
RUNS = {"defaults": BENCH_DIR / "runs" / "a2c_pong" / "a2c_atari_lstm" / ENV / "seed1"}
RUNS.update({label: BENCH_DIR / "runs" / "a2c_pong_study" / label / ENV / "seed1" for label in STUDY})
RECORDS = BENCH_DIR / "records" / "a2c_pong_curves"
COMMAND = (
    "python -m benchmarks run a2c_pong --workers 1 && python -m benchmarks run a2c_pong_study --workers 1 "
    "&& python -m benchmarks.a2c_pong_study"
)
CHECKPOINTS = [250_000, 500_000, 750_000, 1_500_000, 3_000_000]
ENTROPY_FROM, ENTROPY_TO = 650_000, 750_000
LEVELS = [-18.0, TARGET]  # -18: the first sign of learning (random play scores about -20.5)


def read_run(run_dir: Path) -> dict:
    scalars = read_scalars(run_dir, wall_time=True)
    meta = json.loads((run_dir / "meta.json").read_text())
    return {
        "meta": meta,
        "train": scalars.get("charts/episodic_return", []),
        "entropy": [(s, v) for s, _, v in scalars.get("losses/entropy", [])],
        "grad_norm": [(s, v) for s, _, v in scalars.get("losses/grad_norm", [])],
        "sps": [(s, v) for s, _, v in scalars.get("charts/SPS", [])],
        "eval": [v for _, _, v in scalars.get("eval/episodic_return", [])],
    }


def mean_at(train: list, step: int) -> float:
    """The mean of the last WINDOW whole games that ended by `step` (nan past the run's end)."""
    scores = [v for s, _, v in train if s <= step]
    if not train or train[-1][0] < step * 0.99 or len(scores) < WINDOW:
        return math.nan
    return float(np.mean(scores[-WINDOW:]))


def clip_of(record: dict) -> float:
    args = record["meta"]["args"]
    return float(args[args.index("--max-grad-norm") + 1]) if "--max-grad-norm" in args else 0.5


def row(label: str, record: dict) -> str:
    train = record["train"]
    means = " | ".join("—" if math.isnan(m) else f"{m:.1f}" for m in (mean_at(train, s) for s in CHECKPOINTS))
    reach = []
    for level in LEVELS:
        step, seconds = first_reach(train, WINDOW, level)
        reach.append("not reached" if step is None else f"{step:,} steps, {seconds / 60:.0f} min")
    entropy = [v for s, v in record["entropy"] if ENTROPY_FROM <= s <= ENTROPY_TO]
    norms = [v for s, v in record["grad_norm"] if s <= ENTROPY_TO]
    clipped = np.mean([n > clip_of(record) for n in norms]) if norms else math.nan
    sps = np.mean([v for _, v in record["sps"][len(record["sps"]) // 5 :]]) if record["sps"] else math.nan
    sampled = f"{np.mean(record['eval']):.1f}" if record["eval"] else "—"
    change = " ".join(STUDY.get(label, ["(the article's defaults)"]))
    return (
        f"| {change} | {means} | {' | '.join(reach)} | {np.mean(entropy):.3f} | {np.median(norms):.2f} | {clipped:.0%} "
        f"| {sampled} | {sps:.0f} | {record['meta']['wall_s'] / 60:.0f} min |"
    )


def main() -> None:
    RECORDS.mkdir(parents=True, exist_ok=True)
    for label, run_dir in RUNS.items():
        if (run_dir / "meta.json").exists():
            (RECORDS / f"{label}.json").write_text(json.dumps(read_run(run_dir)))
    records = {label: json.loads((RECORDS / f"{label}.json").read_text()) for label in RUNS}
    header = " | ".join(f"{s / 1e6:g}M" for s in CHECKPOINTS)
    lines = [
        f"| change (seed 1) | training 20-game mean at {header} | "
        + " | ".join(f"first 20-game mean >= {level:g}" for level in LEVELS)
        + " "
        f"| entropy at {ENTROPY_FROM // 1000}k-{ENTROPY_TO // 1000}k | median grad norm (before clip) "
        "| updates above the clip | saved model, 10 games sampled from its policy | SPS | wall time |",
        "|---|" + "---|" * (len(CHECKPOINTS) + len(LEVELS)) + "---|---|---|---|---|---|",
    ]
    lines += [row(label, record) for label, record in records.items()]
    machine = describe(records["defaults"]["meta"].get("machine", {}))
    text = (
        f"## A2C on Pong: the defaults over 3M steps, and one change at a time over 750k\n\n`{COMMAND}`\n\n"
        + "\n".join(lines)
        + f"\n\nThe runs shared the 2 cores (two or three at a time, and test runs at times): their wall "
        f"times and SPS are those of a shared machine; the steps are what to compare. Entropy: the mean of `losses/entropy` (the per-step mean policy "
        f"entropy; ln 6 = 1.79 is uniform). Machine: {machine}\n"
    )
    (BENCH_DIR / "results" / "a2c_pong.md").write_text(text)
    print(text)
    plot(records)


def plot(records: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for label, record in records.items():
        train = record["train"]
        rolling = rolling_mean([v for _, _, v in train])
        name = " ".join(STUDY.get(label, ["defaults"]))
        for ax, col, scale in ((axes[0], 0, 1e6), (axes[1], 1, 60.0)):
            ax.plot([p[col] / scale for p in train], rolling, label=name, linewidth=2 if label == "defaults" else 1)
    plot_a3c_seeds(axes[0])  # A3C's 3 seeds against steps, for comparison
    xlabels, ylabel = (
        ["agent steps (millions, all games)", "wall time (minutes)"],
        "Pong score, 20-game mean (whole games)",
    )
    title = "a2c_atari_lstm.py, PongNoFrameskip-v4, seed 1, 2-core CPU"
    finish_figure(fig, axes, xlabels, ylabel, axes[0], title, "a2c_pong_curves.png", fontsize=8, loc="center left")


if __name__ == "__main__":
    main()
