"""The imitation results: BC and GAIL against their inline experts, from the runs of the suites
`imitation_bc` and `imitation_gail` (benchmarks/suites/imitation.py).

    python -m benchmarks run imitation_bc imitation_gail --workers 2
    python -m benchmarks.imitation        # writes benchmarks/results/imitation.md

Every run trains its own PPO expert first, then imitates it; the table puts the expert's own
evaluated return (20 episodes, greedy and sampling) beside the imitator's. The state-distribution
columns compare the mean |cart position| and |pole angle| over the states of the learner's 20
sampling evaluation episodes with the expert's (CartPole observation indices 0 and 2).
"""

import argparse
import json
from pathlib import Path

import numpy as np

from benchmarks.fragments import write_fragment
from benchmarks.suite import BENCH_DIR
from benchmarks.summary import first_step_reaching, read_scalars

SUITES = ["imitation_bc", "imitation_gail"]
THRESHOLD = 475.0
COMMAND = "python -m benchmarks.imitation"


def last(scalars: dict, tag: str):
    values = scalars.get(tag)
    return values[-1][1] if values else float("nan")


def run_stats(seed_dir: Path) -> dict:
    meta = json.loads((seed_dir / "meta.json").read_text())
    stats = {"seed": meta["seed"], "wall_s": meta["wall_s"], "exit_code": meta["exit_code"], "meta": meta}
    if meta["exit_code"] != 0:
        return stats
    scalars = read_scalars(seed_dir)
    stats.update(
        expert_greedy=last(scalars, "charts/expert_return_greedy"),
        expert_sampling=last(scalars, "charts/expert_return_sampling"),
        expert_demo=last(scalars, "charts/expert_demo_return"),
        greedy=last(scalars, "eval/final_return_greedy"),
        expert_steps=scalars["expert/losses/policy_loss"][-1][0] if "expert/losses/policy_loss" in scalars else 0,
        sampling=last(scalars, "eval/final_return_sampling"),
    )
    if "losses/bc_loss" in scalars:  # BC: the first periodic evaluation (5 episodes) at >= 475
        hits = [step for step, value in scalars.get("eval/episodic_return", []) if value >= THRESHOLD]
        stats["reached"] = hits[0] if hits else None
    else:  # GAIL: the first step where the 20-episode mean of the true training return is >= 475
        episodes = scalars.get("charts/episodic_return", [])
        steps, returns = [s for s, _ in episodes], [v for _, v in episodes]
        stats["reached"] = first_step_reaching(steps, returns, THRESHOLD)
        stats["train_last20"] = float(np.mean(returns[-20:])) if returns else float("nan")
    (states_path,) = seed_dir.glob("runs/*/eval_states.npz")
    with np.load(states_path) as states:
        for who in ("learner", "expert"):
            key = f"{who}_sampling_obs"
            if key in states:
                obs = states[key]
                stats[f"{who}_abs_x"] = float(np.abs(obs[:, 0]).mean())
                stats[f"{who}_abs_theta"] = float(np.abs(obs[:, 2]).mean())
    return stats


def fmt(value, digits=1) -> str:
    if value is None:
        return "never"
    if isinstance(value, float) and np.isnan(value):
        return "n/a"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def table(suite: str, label: str, runs: list) -> str:
    is_gail = suite == "imitation_gail"
    reached_name = "steps to 20-ep mean >= 475" if is_gail else "first iteration with eval >= 475"
    header = [
        "seed",
        "expert steps",
        "expert greedy",
        "expert sampling",
        "demo episode",
        f"{'GAIL' if is_gail else 'BC'} greedy",
        f"{'GAIL' if is_gail else 'BC'} sampling",
        *(["train return (last 20)"] if is_gail else []),
        reached_name,
        "mean abs x: learner / expert",
        "mean abs theta: learner / expert",
        "wall time (s, expert included)",
    ]
    lines = [f"**{label}** (`{' '.join(runs[0]['meta']['command'][1:])}` with `--seed` 1, 2, 3)", ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in runs:
        if r["exit_code"] != 0:
            lines.append(f"| {r['seed']} | failed (exit {r['exit_code']}) |")
            continue
        row = [
            str(r["seed"]),
            str(r["expert_steps"]),
            fmt(r["expert_greedy"]),
            fmt(r["expert_sampling"]),
            fmt(r["expert_demo"]),
            fmt(r["greedy"]),
            fmt(r["sampling"]),
            *([fmt(r["train_last20"])] if is_gail else []),
            fmt(r["reached"]),
            f"{fmt(r.get('learner_abs_x', float('nan')), 3)} / {fmt(r.get('expert_abs_x', float('nan')), 3)}",
            f"{fmt(r.get('learner_abs_theta', float('nan')), 4)} / {fmt(r.get('expert_abs_theta', float('nan')), 4)}",
            f"{r['wall_s']:.0f}",
        ]
        lines.append("| " + " | ".join(row) + " |")
    ok = [r for r in runs if r["exit_code"] == 0]
    if ok:

        def mean(key):
            return float(np.mean([r.get(key, float("nan")) for r in ok]))

        reached = [r["reached"] for r in ok]
        row = [
            "mean",
            f"{mean('expert_steps'):.0f}",
            fmt(mean("expert_greedy")),
            fmt(mean("expert_sampling")),
            fmt(mean("expert_demo")),
            fmt(mean("greedy")),
            fmt(mean("sampling")),
            *([fmt(mean("train_last20"))] if is_gail else []),
            f"{sum(x is not None for x in reached)}/{len(reached)} seeds",
            f"{fmt(mean('learner_abs_x'), 3)} / {fmt(mean('expert_abs_x'), 3)}",
            f"{fmt(mean('learner_abs_theta'), 4)} / {fmt(mean('expert_abs_theta'), 4)}",
            f"{mean('wall_s'):.0f}",
        ]
        lines.append("| " + " | ".join(f"**{c}**" for c in row) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.imitation", description=__doc__.splitlines()[0])
    parser.add_argument("--suites", nargs="+", default=SUITES, help="suites to read (default: both)")
    parser.add_argument("--name", default="imitation", help="fragment name: benchmarks/results/<name>.md")
    parser.add_argument("--title", default="Imitation: BC and GAIL against their experts")
    parser.add_argument("--note", default="", help="a paragraph put before the tables")
    opts = parser.parse_args()
    command = COMMAND + "".join(
        f" --{k} {' '.join(v) if isinstance(v, list) else repr(v)}"
        for k, v in (("suites", opts.suites), ("name", opts.name), ("title", opts.title), ("note", opts.note))
        if v != parser.get_default(k)
    )
    parts = [opts.note, ""] if opts.note else []
    parts += [
        "Returns are 20-episode means of the final policy: *greedy* plays the argmax action, *sampling* "
        "draws from the policy. The expert is each run's own inline PPO expert, evaluated the same way; "
        "*demo episode* is the return of the expert episode the demonstrations were sampled from. "
        "For BC the periodic evaluation (every 10 iterations, 5 greedy episodes) gives the first "
        "iteration reaching 475; for GAIL the 20-episode rolling mean of the true training return "
        "gives the step (the generator's steps, after the expert's). *Expert steps*: the steps the "
        "inline PPO expert trained for (150k by default, fewer where a run stops it early). "
        "Random-demonstration rows are the control: their 'expert' is a uniform-random "
        "policy (its greedy column is the constant action 0).",
        "",
    ]
    for suite in opts.suites:
        suite_dir = BENCH_DIR / "runs" / suite
        if not suite_dir.is_dir():
            continue
        for label_dir in sorted(p for p in suite_dir.iterdir() if p.is_dir()):
            for env_dir in sorted(p for p in label_dir.iterdir() if p.is_dir()):
                runs = [run_stats(d) for d in sorted(env_dir.glob("seed*")) if (d / "meta.json").exists()]
                if runs:
                    parts.append(table(suite, f"{label_dir.name} on {env_dir.name}", runs))
    path = write_fragment(opts.name, opts.title, command, "\n".join(parts))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
