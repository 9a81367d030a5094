"""Training SPS of a2c_atari_lstm.py, side by side with its env-only ceiling and stable-baselines3 A2C.

    python -m benchmarks.speed_a2c [--steps 20000] [--repeats 2]

All three on PongNoFrameskip-v4 with 8 environments, one torch thread, CPU, each in a fresh process,
alternating in one command:
- `a2c_atari_lstm.py` at its defaults (ALE's native AtariVectorEnv, rollout 5, the article's
  conv + LSTMCell network), SPS as the script prints it (steps / training time, start-up excluded);
- env only: the same AtariVectorEnv, same preprocessing, stepped with uniform random actions
  (the ceiling the training loop can approach);
- stable-baselines3 A2C with its Atari wrappers (`make_atari_env`, 8 envs in its default DummyVecEnv,
  + `VecFrameStack(4)`), `n_steps=5`, its default `CnnPolicy` (the Nature CNN, no LSTM) and
  default hyper-parameters; SPS = steps / `learn()` time.
Writes `benchmarks/results/speed_a2c.md` with both ratios.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.fragments import write_fragment
from benchmarks.suite import ROOT

COMMAND = "python -m benchmarks.speed_a2c"
ENV_ID = "PongNoFrameskip-v4"
NUM_ENVS = 8


def sb3_child(steps: int, seed: int) -> None:
    import ale_py
    import gymnasium as gym
    import torch
    from stable_baselines3 import A2C
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import VecFrameStack

    gym.register_envs(ale_py)
    torch.set_num_threads(1)
    env = VecFrameStack(make_atari_env(ENV_ID, n_envs=NUM_ENVS, seed=seed), n_stack=4)
    model = A2C("CnnPolicy", env, n_steps=5, seed=seed, device="cpu", verbose=0)
    start = time.perf_counter()
    model.learn(total_timesteps=steps)
    train_s = time.perf_counter() - start
    print(json.dumps({"sps": model.num_timesteps / train_s, "steps": model.num_timesteps}))


def env_child(steps: int, seed: int) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("a2c_atari_lstm", ROOT / "a2c_atari_lstm.py")
    a2c = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(a2c)
    games = a2c.AtariGames(ENV_ID, NUM_ENVS, "ale", seed)
    games.reset()
    rng = np.random.default_rng(seed)
    n = games.single_action_space.n
    start = time.perf_counter()
    for _ in range(steps // NUM_ENVS):
        games.step(rng.integers(0, n, size=NUM_ENVS))
    elapsed = time.perf_counter() - start
    games.close()
    print(json.dumps({"sps": steps // NUM_ENVS * NUM_ENVS / elapsed}))


def child(kind: str, steps: int, seed: int, cwd: Path) -> float:
    cmd = [sys.executable, "-m", "benchmarks.speed_a2c", f"--{kind}-child", "--steps", str(steps), "--seed", str(seed)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])["sps"]


def run_script(steps: int, seed: int, cwd: Path) -> float:
    cmd = [sys.executable, str(ROOT / "a2c_atari_lstm.py"), "--env-id", ENV_ID, "--total-timesteps", str(steps),
           "--seed", str(seed), "--checkpoint-interval", "0"]
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=True).stdout
    return float(re.findall(r"SPS\s+(\d+)", out)[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20000, help="environment steps per run (a multiple of 40)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each side")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sb3-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--env-child", action="store_true", help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    if opts.sb3_child:
        return sb3_child(opts.steps, opts.seed)
    if opts.env_child:
        return env_child(opts.steps, opts.seed)
    sides = {
        "a2c_atari_lstm.py (training)": lambda s, seed, cwd: run_script(s, seed, cwd),
        "same vector env, random actions (env only)": lambda s, seed, cwd: child("env", s, seed, cwd),
        "stable-baselines3 A2C (training)": lambda s, seed, cwd: child("sb3", s, seed, cwd),
    }
    results = {name: [] for name in sides}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(opts.repeats):
            order = list(sides) if rep % 2 == 0 else list(sides)[::-1]
            for name in order:
                sps = sides[name](opts.steps, opts.seed + rep, Path(tmp))
                results[name].append(sps)
                print(f"rep {rep + 1}: {name}: {sps:.0f} SPS", flush=True)
    from importlib import metadata

    ours, env_only, sb3 = (np.mean(v) for v in results.values())
    rows = "\n".join(
        f"| {name} | {', '.join(f'{v:.0f}' for v in vals)} | {np.mean(vals):.0f} |" for name, vals in results.items()
    )
    command = COMMAND + ("" if (opts.steps, opts.repeats) == (20000, 2) else f" --steps {opts.steps} --repeats {opts.repeats}")
    body = (
        f"{ENV_ID}, {NUM_ENVS} environments, {opts.steps} steps per run, {opts.repeats} runs of each side, "
        "alternating, each in a fresh process, one torch thread, CPU. a2c_atari_lstm.py at its defaults "
        "(ale-py's native AtariVectorEnv, rollout 5, conv + LSTMCell(288, 288)); env only = the same vector env "
        "and preprocessing with random actions; stable-baselines3 "
        f"{metadata.version('stable-baselines3')} A2C with make_atari_env (DummyVecEnv) + VecFrameStack(4), "
        "n_steps 5, its default CnnPolicy (Nature CNN, no LSTM) and hyper-parameters. "
        "SPS = steps / training time inside the process (start-up excluded).\n\n"
        "| side | SPS per run | mean SPS |\n|---|---|---|\n"
        f"{rows}\n\n"
        f"**a2c_atari_lstm.py / stable-baselines3 A2C: {ours / sb3:.2f}x** (target >= 2x: "
        f"{'met' if ours / sb3 >= 2 else 'NOT met'}); "
        f"**a2c_atari_lstm.py / env-only ceiling: {ours / env_only:.2f}** "
        f"(the training loop runs at {100 * ours / env_only:.0f}% of the speed of stepping the env alone).\n"
    )
    path = write_fragment("speed_a2c", "Speed: a2c_atari_lstm.py vs its env-only ceiling and stable-baselines3 A2C",
                          command, body)
    print(f"ratios: vs sb3 {ours / sb3:.2f}, vs env only {ours / env_only:.2f}; written {path}")


if __name__ == "__main__":
    main()
