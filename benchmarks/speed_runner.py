"""How well the parallel runner uses the cores: 3 CartPole seeds of ppo_discrete.py, 2 workers vs 1.

    python -m benchmarks.speed_runner

Runs the `ppo_discrete` suite's CartPole-v1 seeds with 2 workers, then with 1, in one command, under
`benchmarks/runs/_scaling/` (not summarised as suite results), and writes
`benchmarks/results/runner_scaling.md` with both wall times and their ratio. With 3 runs, 2 workers
can at best take 2 run-lengths against 3, so the ideal ratio is 1.5.
"""

import argparse
import dataclasses

import numpy as np

from benchmarks.fragments import write_fragment
from benchmarks.runner import run_suite
from benchmarks.suite import BENCH_DIR, discover_suites

COMMAND = "python -m benchmarks.speed_runner"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default="ppo_discrete")
    parser.add_argument("--env-id", default="CartPole-v1")
    parser.add_argument("--total-timesteps", type=int, default=None, help="override the suite's run length")
    opts = parser.parse_args(argv)
    member = next(m for m in discover_suites()[opts.suite] if opts.env_id in m.env_ids)
    extra = () if opts.total_timesteps is None else ("--total-timesteps", str(opts.total_timesteps))
    member = dataclasses.replace(member, env_ids=[opts.env_id], args=(*member.args, *extra))
    results = {}
    for workers in (2, 1):
        results[workers] = run_suite(
            opts.suite, [member], workers=workers, runs_dir=BENCH_DIR / "runs" / "_scaling" / f"w{workers}"
        )
    ratio = results[1]["wall_s"] / results[2]["wall_s"]
    rows = []
    for workers in (2, 1):
        runs = results[workers]["runs"]
        rows.append(
            f"| {workers} | {results[workers]['wall_s']:.1f} s | "
            + ", ".join(f"{m['wall_s']:.1f}" for m in runs)
            + f" s | {np.mean([m['wall_s'] for m in runs]):.1f} s |"
        )
    n = len(member.seeds)
    ideal = n / -(-n // 2)
    body = (
        f"`{member.script} {' '.join(member.args)}` on {opts.env_id}, seeds {member.seeds} "
        f"({n} runs), all runs of the suite with 2 workers, then with 1 worker.\n\n"
        "| workers | suite wall time | wall time per run | mean per run |\n|---|---|---|---|\n"
        + "\n".join(rows)
        + f"\n\n**Wall-time ratio, 1 worker / 2 workers: {ratio:.2f}x** "
        f"(for {n} runs on 2 workers the ideal is {ideal:.2f}x, if a run's speed did not depend on the run "
        "beside it; compare the per-run wall times of the two lines, which also move with other load on the machine).\n"
    )
    command = COMMAND + "".join(
        f" --{k.replace('_', '-')} {v}" for k, v in vars(opts).items() if v != parser.get_default(k)
    )
    path = write_fragment("runner_scaling", "Parallel runner: 2 workers vs 1", command, body)
    print(f"ratio {ratio:.2f}; written {path}")


if __name__ == "__main__":
    main()
