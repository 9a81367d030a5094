"""Training SPS of a2c_atari_lstm.py data-parallel under torchrun against one process, side by side.

    python -m benchmarks.speed_a2c_ranks [--steps 20000] [--repeats 2] [--ranks 1 2]

PongNoFrameskip-v4, CPU, 1 torch thread per rank, 8 games per rank (the script's defaults otherwise),
each run in a fresh process, alternating in one command:
- 1 rank: plain `python a2c_atari_lstm.py`, the single-process code path;
- N ranks: `torchrun --standalone --nproc-per-node N a2c_atari_lstm.py` (gloo), each rank running `--steps`
  steps of its own 8 games (so `--total-timesteps` is N x `--steps`): the same work per rank as 1 rank.
SPS is the script's own (all ranks' steps / training time, start-up excluded, from rank 0's console).
Scaling efficiency = SPS(N ranks) / (N x SPS(1 rank)): 1.0 is perfect scaling; on a machine with fewer
free cores than ranks it cannot be reached. Writes `benchmarks/results/speed_a2c_ranks.md`.
"""

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from benchmarks.fragments import run_alternating, write_fragment
from benchmarks.suite import ROOT

COMMAND = "python -m benchmarks.speed_a2c_ranks"
ENV_ID = "PongNoFrameskip-v4"
NUM_ENVS = 8  # per rank


def run_ranks(ranks: int, steps: int, seed: int, cwd: Path) -> float:
    """SPS of one training run of `steps` steps per rank on `ranks` ranks (1: plain python, no torchrun)."""
    flags = f"--env-id {ENV_ID} --num-envs {NUM_ENVS} --total-timesteps {steps * ranks} --seed {seed}"
    flags += " --checkpoint-interval 0 --torch-threads 1"
    launcher = [] if ranks == 1 else ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}"]
    cmd = [sys.executable, *launcher, str(ROOT / "a2c_atari_lstm.py"), *flags.split()]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=True, env=env).stdout
    return float(re.findall(r"SPS\s+(\d+)", out)[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--steps", type=int, default=20000, help="environment steps per rank and run (a multiple of 40)"
    )
    parser.add_argument("--repeats", type=int, default=2, help="runs of each side")
    parser.add_argument(
        "--ranks", type=int, nargs="+", default=[1, 2], help="rank counts to compare (1 is the baseline)"
    )
    parser.add_argument("--seed", type=int, default=1)
    opts = parser.parse_args(argv)
    ranks = sorted(set(opts.ranks) | {1})
    sides = {n: lambda s, seed, cwd, n=n: run_ranks(n, s, seed, cwd) for n in ranks}
    results = run_alternating(sides, opts.steps, opts.repeats, opts.seed, lambda n, sps: f"{n} rank(s): {sps:.0f} SPS")
    mean = {n: float(np.mean(vals)) for n, vals in results.items()}
    efficiency = {n: mean[n] / (n * mean[1]) for n in ranks}
    rows = "\n".join(
        f"| {n} | {n * NUM_ENVS} | {', '.join(f'{v:.0f}' for v in results[n])} | {mean[n]:.0f} "
        f"| {mean[n] / mean[1]:.2f}x | **{efficiency[n]:.2f}** |"
        for n in ranks
    )
    defaults = (20000, 2, [1, 2])
    command = COMMAND + (
        ""
        if (opts.steps, opts.repeats, sorted(opts.ranks)) == defaults
        else f" --steps {opts.steps} --repeats {opts.repeats} --ranks {' '.join(map(str, opts.ranks))}"
    )
    body = (
        f"{ENV_ID}, {NUM_ENVS} games per rank, {opts.steps} steps per rank and run, {opts.repeats} runs of each "
        "side, alternating, each in a fresh process, CPU, 1 torch thread per rank. 1 rank = plain "
        "`python a2c_atari_lstm.py`; N ranks = `torchrun --standalone --nproc-per-node N a2c_atari_lstm.py` "
        "(gloo; one all-reduce of the flattened gradients and one of the stop flag per update). "
        "SPS = all ranks' steps / training time, as the script prints it (start-up excluded). "
        "Scaling efficiency = SPS(N) / (N x SPS(1)).\n\n"
        "| ranks | games in all | SPS per run | mean SPS | speed-up | scaling efficiency |\n"
        "|---|---|---|---|---|---|\n"
        f"{rows}\n"
    )
    path = write_fragment("speed_a2c_ranks", "Speed: a2c_atari_lstm.py on N ranks under torchrun", command, body)
    summary = ", ".join(f"{n} ranks {efficiency[n]:.2f}" for n in ranks if n > 1)
    print(f"scaling efficiency: {summary}; written {path}")


if __name__ == "__main__":
    main()
