"""Measurements of a3c_pong_hogwild.py that are not plain learning curves.

    python -m benchmarks.speed_a3c pong [--rounds 2] [--seconds 45] [--compile] [--against REV]
    python -m benchmarks.speed_a3c acting [--rounds 2] [--against REV]
    python -m benchmarks.speed_a3c cartpole      # after: python -m benchmarks run a3c_cartpole --workers 1
    python -m benchmarks.speed_a3c               # both (cartpole only where its runs exist)

`pong`: Hogwild! throughput on PongDeterministic-v4 in one command, interleaved over `--rounds`
rounds: (a) the env-only stepping rate of the script's own preprocessing (`make_env`: frameskip 4,
42x42 grey frames, running normalisation) with random actions, in 1 and in 2 parallel processes;
(b) the script training with 1 and with 2 worker processes (no test process, no checkpoints), and
with `--compile` also the same runs of the script with `--compile`, and with `--against REV` the
same runs of the script as it was at git revision REV (before a change), in the same interleaved rounds.
A training run's rate is its steady state: env steps / wall time between its `charts/SPS` points
after the first 20% of the run, read from the TensorBoard event times (start-up excluded). Writes
`benchmarks/results/a3c_pong_throughput.md` with the 2-vs-1 scaling ratio and per-process SPS
against the env-only rate.

`acting`: the per-step cost of a worker's acting forward (one frame, no graph, then sampling), of
the present script and, with `--against REV`, of the script at REV, in alternating fresh processes;
writes `benchmarks/results/a3c_acting.md`.

`cartpole`: reads the runs of the `a3c_cartpole` suite (2 worker processes, 3 seeds) and writes
`benchmarks/results/a3c_cartpole.md`: the wall time (since the run's TensorBoard writer was made)
and the env step at which the test process's 20-episode greedy mean first reaches 475, and the
last evaluation's mean.
"""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.fragments import write_fragment
from benchmarks.suite import BENCH_DIR, ROOT

SCRIPT = ROOT / "a3c_pong_hogwild.py"
PONG = "PongDeterministic-v4"


def events(run_dir: Path, tag: str) -> list:
    """[(step, value, wall_time), ...] of one scalar tag in a run directory's event files."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = []
    for event_file in sorted(run_dir.glob("events.out.tfevents.*")):
        acc = EventAccumulator(str(event_file), size_guidance={"scalars": 0})
        acc.Reload()
        if tag in acc.Tags()["scalars"]:
            out += [(e.step, e.value, e.wall_time) for e in acc.Scalars(tag)]
    return sorted(out, key=lambda e: e[2])


def first_event_time(run_dir: Path) -> float:
    """Wall time of the first event (the hyperparameter text, written when the writer is made)."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    event_file = sorted(run_dir.glob("events.out.tfevents.*"))[0]
    return next(iter(EventFileLoader(str(event_file)).Load())).wall_time


# --- pong ------------------------------------------------------------------------------------


def env_only_child(steps: int, seed: int) -> None:
    """Step the script's preprocessed Pong env with random actions; print {"sps": ...}."""
    spec = importlib.util.spec_from_file_location("a3c_pong_hogwild", SCRIPT)
    a3c = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(a3c)
    import ale_py
    import gymnasium as gym

    gym.register_envs(ale_py)
    env = a3c.make_env(PONG)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    for _ in range(200):  # warm-up
        env.step(env.action_space.sample())
    start = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    print(json.dumps({"sps": steps / (time.perf_counter() - start)}))


def env_only(processes: int, steps: int) -> float:
    """Total env-only steps/s of `processes` processes stepping at the same time."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "benchmarks.speed_a3c", "_env_only", "--steps", str(steps), "--seed", str(i + 1)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(processes)
    ]
    rates = [json.loads(p.communicate()[0].strip().splitlines()[-1])["sps"] for p in procs]
    return float(sum(rates))


def training(processes: int, steps: int, extra: tuple = (), script: Path = SCRIPT) -> dict:
    """Train with `processes` workers for `steps` env steps; steady-state total steps/s."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            sys.executable, str(script), "--env-id", PONG, "--num-processes", str(processes),
            "--total-timesteps", str(steps), "--test-episodes", "0", "--checkpoint-interval", "0", *extra,
        ]  # fmt: skip
        start = time.perf_counter()
        result = subprocess.run(command, cwd=tmp, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
        (run_dir,) = (Path(tmp) / "runs").iterdir()
        points = events(run_dir, "charts/SPS")
        steady = [p for p in points if p[0] >= 0.2 * steps]
        first, last = steady[0], steady[-1]
        rate = (last[0] - first[0]) / (last[2] - first[2])
        return {"sps": rate, "wall_s": wall, "steps": int(last[0])}


def script_at(revision: str, folder: str) -> Path:
    """The script as it was at git `revision` (a commit: a branch name is resolved), written into `folder`."""
    text = subprocess.run(["git", "show", f"{revision}:{SCRIPT.name}"], cwd=ROOT, capture_output=True, text=True)
    if text.returncode != 0:
        sys.exit(f"error: --against {revision}: {text.stderr.strip()}")
    path = Path(folder) / SCRIPT.name
    path.write_text(text.stdout)
    return path


def commit_of(revision: str) -> str:
    """`revision` as a short commit hash, so that a record names a fixed version (not a moving branch)."""
    out = subprocess.run(["git", "rev-parse", "--short", revision], cwd=ROOT, capture_output=True, text=True)
    return out.stdout.strip() or revision


def pong(rounds: int, seconds: float, compile: bool = False, against: str = None) -> None:
    against = commit_of(against) if against else None
    # a first guess of the rates sizes the runs to about `seconds` each
    guess_env = env_only(1, 2000)
    steps_per_proc = int(seconds * guess_env / 6.5)  # a worker trains at roughly 1/6.5 of the env-only speed
    order = ["env1", "a3c1", "a3c2", "env2"] + (["a3c1c", "a3c2c"] if compile else [])  # "c": with --compile
    order += ["a3c1b", "a3c2b"] if against else []  # "b": the script at revision `against` (before)
    before = script_at(against, tempfile.mkdtemp()) if against else None
    results, walls = {key: [] for key in order}, {key: [] for key in order}
    for r in range(rounds):
        for key in order if r % 2 == 0 else order[::-1]:
            processes = int(key[3])
            if key.startswith("env"):
                value = env_only(processes, int(seconds / 3 * guess_env))
            else:
                extra = ("--compile",) if key.endswith("c") else ()
                script = before if key.endswith("b") else SCRIPT
                run = training(processes, steps_per_proc * processes, extra, script)
                value = run["sps"]
                walls[key].append(run["wall_s"])
            results[key].append(value)
            print(f"round {r + 1} {key}: {value:.0f} steps/s", flush=True)
    mean = {k: float(np.mean(v)) for k, v in results.items()}
    scaling = mean["a3c2"] / mean["a3c1"]
    env_scaling = mean["env2"] / mean["env1"]

    def cell(key):
        return f"{mean[key]:.0f} ({', '.join(f'{v:.0f}' for v in results[key])})"

    body = (
        f"{PONG} (the script's `make_env`: NoFrameskip-v4 game, frameskip 4, no sticky actions, 42x42 "
        f"grey frames with running normalisation). {rounds} interleaved rounds; each cell is the mean "
        "total env steps/s (each round's value in brackets). Training: `a3c_pong_hogwild.py "
        "--num-processes N --test-episodes 0 --checkpoint-interval 0`, steady-state rate after the first "
        f"20% of {steps_per_proc} steps per worker. Env-only: random actions, N processes stepping at once.\n\n"
        "| processes | A3C training, total steps/s | per process | env-only, total steps/s | per process | "
        "training / env-only |\n|---|---|---|---|---|---|\n"
        f"| 1 | {cell('a3c1')} | {mean['a3c1']:.0f} | {cell('env1')} | {mean['env1']:.0f} | "
        f"{mean['a3c1'] / mean['env1']:.2f} |\n"
        f"| 2 | {cell('a3c2')} | {mean['a3c2'] / 2:.0f} | {cell('env2')} | {mean['env2'] / 2:.0f} | "
        f"{mean['a3c2'] / mean['env2']:.2f} |\n"
        + "".join(
            f"| {n}, `--compile` | {cell(f'a3c{n}c')} | {mean[f'a3c{n}c'] / n:.0f} | {cell(f'env{n}')} | "
            f"{mean[f'env{n}'] / n:.0f} | {mean[f'a3c{n}c'] / mean[f'env{n}']:.2f} |\n"
            for n in (1, 2)
            if compile
        )
        + "".join(
            f"| {n}, the script at `{against}` | {cell(f'a3c{n}b')} | {mean[f'a3c{n}b'] / n:.0f} | {cell(f'env{n}')} | "
            f"{mean[f'env{n}'] / n:.0f} | {mean[f'a3c{n}b'] / mean[f'env{n}']:.2f} |\n"
            for n in (1, 2)
            if against
        )
        + "\n"
        + "".join(
            f"Wall time of a whole run with {n} processes, start-up and compiling included: "
            f"{np.mean(walls[f'a3c{n}']):.0f} s plain, {np.mean(walls[f'a3c{n}c']):.0f} s with `--compile`.\n"
            for n in (1, 2)
            if compile
        )
        + "\n"
        f"**Scaling, 2 worker processes / 1: {scaling:.2f}x** (target >= 1.8x); the env alone scales "
        f"{env_scaling:.2f}x on the same cores.\n"
    )
    path = write_fragment(
        "a3c_pong_throughput",
        "A3C Hogwild! throughput on Pong: 1 vs 2 worker processes",
        "python -m benchmarks.speed_a3c pong"
        + (f" --rounds {rounds}" if rounds != 2 else "")
        + (f" --seconds {seconds:g}" if seconds != 45.0 else "")
        + (" --compile" if compile else "")
        + (f" --against {against}" if against else ""),
        body,
    )
    print(f"scaling {scaling:.2f}x; written {path}")


# --- acting --------------------------------------------------------------------------------


def acting_child(script: str, steps: int) -> None:
    """Time a worker's acting step on one 42x42 frame (forward without a graph, then sampling), as
    `train_worker` makes it: one torch thread, channels-last model; print {"us": per step}."""
    import torch

    spec = importlib.util.spec_from_file_location("a3c_pong_hogwild", script)
    a3c = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(a3c)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = a3c.build_model("atari", (1, 42, 42), 6).train().to(memory_format=torch.channels_last)
    x, state = torch.randn(1, 1, 42, 42), model.initial_state()
    with torch.no_grad():
        for i in range(steps + 500):  # the first 500: warm-up
            if i == 500:
                start = time.perf_counter()
            _, logits, state = model(x, state)
            int(a3c.sample_actions(logits))
    print(json.dumps({"us": (time.perf_counter() - start) / steps * 1e6}))


def acting(rounds: int, against: str) -> None:
    """The acting step of the present script and, with `against`, of the script at that revision, in
    alternating fresh processes; a fragment with the per-step times."""
    against = commit_of(against) if against else None
    scripts = {"present": SCRIPT} | ({f"at `{against}`": script_at(against, tempfile.mkdtemp())} if against else {})
    times = {name: [] for name in scripts}
    for r in range(rounds):
        for name in list(scripts) if r % 2 == 0 else list(scripts)[::-1]:
            cmd = [sys.executable, "-m", "benchmarks.speed_a3c", "_acting", "--script", str(scripts[name])]
            out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True).stdout
            times[name].append(json.loads(out.strip().splitlines()[-1])["us"])
            print(f"round {r + 1} {name}: {times[name][-1]:.0f} us per acting step", flush=True)
    rows = "".join(
        f"| {name} | {np.median(v):.0f} | {', '.join(f'{t:.0f}' for t in v)} |\n" for name, v in times.items()
    )
    body = (
        "A training worker's acting step on Pong (the model's forward on one 42x42 frame without a graph, "
        f"then `sample_actions`), 1 torch thread, channels-last, 10000 steps after a warm-up, {rounds} "
        "alternating fresh processes per script.\n\n| script | median us per step | per round |\n|---|---|---|\n" + rows
    )
    command = f"python -m benchmarks.speed_a3c acting --rounds {rounds}" + (f" --against {against}" if against else "")
    path = write_fragment("a3c_acting", "A3C: the cost of a worker's acting step", command, body)
    print(f"written {path}")


# --- cartpole ------------------------------------------------------------------------------


def cartpole(threshold: float) -> None:
    root = BENCH_DIR / "runs" / "a3c_cartpole" / "a3c-2proc" / "CartPole-v1"
    rows, first_times, stable_times = [], [], []
    for seed_dir in sorted(root.glob("seed*")):
        meta = json.loads((seed_dir / "meta.json").read_text())
        (run_dir,) = [d for d in (seed_dir / "runs").iterdir() if d.is_dir()]
        evals = events(run_dir, "eval/mean_return")
        t0 = first_event_time(run_dir)
        hit = next((e for e in evals if e[1] >= threshold), None)
        # the first evaluation from which every later one stays at or above the threshold
        stable = None
        for i, e in enumerate(evals):
            if all(later[1] >= threshold for later in evals[i:]):
                stable = e
                break
        if hit is not None:
            first_times.append(hit[2] - t0)
        if stable is not None:
            stable_times.append(stable[2] - t0)

        def when(e):
            return f"{e[2] - t0:.0f} s, step {e[0]}" if e is not None else "not reached"

        rows.append(
            f"| {seed_dir.name[4:]} | {when(hit)} | {when(stable)} | {evals[-1][1]:.1f} (step {evals[-1][0]}) | "
            f"{len(evals)} | {meta['wall_s']:.0f} s |"
        )
    command = json.loads((sorted(root.glob("seed*"))[0] / "meta.json").read_text())["command"][1:]
    command = " ".join(command).replace(str(ROOT) + "/", "").replace("--seed 1", "--seed S")
    body = (
        f"Runs of the `a3c_cartpole` suite (`python -m benchmarks run a3c_cartpole --workers 1`; each run: "
        f"`{command}`, S = 1, 2, 3). The test process plays 20 greedy episodes every 10000 env steps; times "
        f"are counted from the run's start (its TensorBoard writer, before the worker processes start; "
        f"Python start-up, about 2-3 s, not included) to the evaluation's report.\n\n"
        f"| seed | first 20-episode mean >= {threshold:g} | from then on always >= {threshold:g} | "
        f"last evaluation (20 episodes) | evaluations | run wall time |\n|---|---|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n\n"
        + (
            f"First reached by {len(first_times)} of {len(rows)} seeds, mean {np.mean(first_times):.0f} s; "
            f"stays above from a mean {np.mean(stable_times):.0f} s ({len(stable_times)} of {len(rows)} seeds) "
            "(target: under 5 minutes).\n"
            if first_times and stable_times
            else "Not reached by every seed.\n"
        )
    )
    path = write_fragment(
        "a3c_cartpole", "A3C Hogwild! on CartPole-v1, 2 processes: time to a greedy mean of 475",
        "python -m benchmarks.speed_a3c cartpole", body,
    )  # fmt: skip
    print(body)
    print(f"written {path}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "what", nargs="?", default="all", choices=["all", "pong", "cartpole", "acting", "_env_only", "_acting"]
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=45.0, help="about how long each timed run lasts")
    parser.add_argument("--threshold", type=float, default=475.0)
    parser.add_argument("--compile", action="store_true", help="pong: also train with --compile, side by side")
    parser.add_argument(
        "--against", metavar="REV", help="pong, acting: also the script as of git revision REV (before a change)"
    )
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--script", default=str(SCRIPT), help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=1)
    opts = parser.parse_args(argv)
    if opts.what in ("all", "pong"):
        pong(opts.rounds, opts.seconds, opts.compile, opts.against)
    if opts.what == "cartpole" or (opts.what == "all" and (BENCH_DIR / "runs" / "a3c_cartpole").exists()):
        cartpole(opts.threshold)
    if opts.what == "acting":
        acting(opts.rounds, opts.against)
    if opts.what == "_env_only":
        env_only_child(opts.steps, opts.seed)
    if opts.what == "_acting":
        acting_child(opts.script, 10000)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
