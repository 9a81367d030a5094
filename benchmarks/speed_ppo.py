"""SPS of ppo_discrete.py against stable-baselines3 PPO with the same hyper-parameters, side by side.

    python -m benchmarks.speed_ppo [--steps 102400] [--repeats 3]

Both train on CartPole-v1 with 4 environments x 128 steps, 4 minibatches of 128, 4 epochs,
learning rate 2.5e-4 annealed linearly to 0, gamma 0.99, GAE lambda 0.95, clip 0.2 (value clipped
too), entropy 0.01, value 0.5, gradient norm 0.5, Adam eps 1e-5, separate 64-64 tanh actor and
critic with orthogonal init, one torch thread, CPU, TensorBoard logging on. SB3 steps a DummyVecEnv.
The runs alternate (ppo, sb3, sb3, ppo, ...) in one command, each in a fresh process; each side's
SPS is steps / training time as measured inside the process (imports and start-up excluded). Writes
`benchmarks/results/speed_ppo.md` with the ratio.
"""

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.fragments import run_alternating, write_fragment
from benchmarks.suite import ROOT

COMMAND = "python -m benchmarks.speed_ppo"


def sb3_child(steps: int, seed: int) -> None:
    """Train SB3 PPO for `steps` and print {"sps": ..., "train_s": ...} as the last line."""
    import torch
    import torch.nn as nn
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv

    torch.set_num_threads(1)
    env = make_vec_env("CartPole-v1", n_envs=4, seed=seed, vec_env_cls=DummyVecEnv)
    model = PPO(
        "MlpPolicy",
        env,
        learning_rate=lambda progress_remaining: 2.5e-4 * progress_remaining,
        n_steps=128,
        batch_size=128,
        n_epochs=4,
        gamma=0.99,
        gae_lambda=0.95,
        clip_range=0.2,
        clip_range_vf=0.2,
        normalize_advantage=True,
        ent_coef=0.01,
        vf_coef=0.5,
        max_grad_norm=0.5,
        policy_kwargs=dict(net_arch=dict(pi=[64, 64], vf=[64, 64]), activation_fn=nn.Tanh),
        tensorboard_log="runs",
        seed=seed,
        device="cpu",
        verbose=0,
    )
    start = time.perf_counter()
    model.learn(total_timesteps=steps)
    train_s = time.perf_counter() - start
    print(json.dumps({"sps": model.num_timesteps / train_s, "train_s": train_s, "steps": model.num_timesteps}))


def run_ppo_discrete(steps: int, seed: int, cwd: Path) -> dict:
    cmd = [
        sys.executable,
        str(ROOT / "ppo_discrete.py"),
        "--env-id",
        "CartPole-v1",
        "--total-timesteps",
        str(steps),
        "--seed",
        str(seed),
    ]
    start = time.perf_counter()
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=True).stdout
    wall = time.perf_counter() - start
    sps = int(re.findall(r"SPS\s+(\d+)", out)[-1])  # the script's own steps / training time
    return {"sps": float(sps), "wall_s": wall}


def run_sb3(steps: int, seed: int, cwd: Path) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.speed_ppo", "--sb3-child", "--steps", str(steps), "--seed", str(seed)]
    start = time.perf_counter()
    env = {"PYTHONPATH": str(ROOT)}
    import os

    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=True, env={**os.environ, **env}).stdout
    wall = time.perf_counter() - start
    result = json.loads(out.strip().splitlines()[-1])
    return {"sps": result["sps"], "wall_s": wall}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=102400, help="environment steps per run (a multiple of 512)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each implementation")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sb3-child", action="store_true", help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    if opts.sb3_child:
        sb3_child(opts.steps, opts.seed)
        return
    runners = {"ppo_discrete.py": run_ppo_discrete, "stable-baselines3 PPO": run_sb3}
    results = run_alternating(
        runners,
        opts.steps,
        opts.repeats,
        opts.seed,
        lambda name, r: f"{name}: {r['sps']:.0f} SPS ({r['wall_s']:.1f} s wall)",
    )
    from importlib import metadata

    ours = np.array([r["sps"] for r in results["ppo_discrete.py"]])
    sb3 = np.array([r["sps"] for r in results["stable-baselines3 PPO"]])
    ratio = ours.mean() / sb3.mean()
    rows = "\n".join(
        f"| {name} | "
        + ", ".join(f"{r['sps']:.0f}" for r in rs)
        + f" | {np.mean([r['sps'] for r in rs]):.0f} | "
        + ", ".join(f"{r['wall_s']:.1f}" for r in rs)
        + " |"
        for name, rs in results.items()
    )
    command = COMMAND + (
        "" if (opts.steps, opts.repeats) == (102400, 3) else f" --steps {opts.steps} --repeats {opts.repeats}"
    )
    body = (
        f"CartPole-v1, {opts.steps} steps per run, {opts.repeats} runs each, alternating, one torch thread, CPU; "
        "identical hyper-parameters and networks (4 envs x 128 steps, 4 minibatches of 128, 4 epochs, lr 2.5e-4 "
        "annealed, separate 64-64 tanh actor and critic; SB3 "
        f"{metadata.version('stable-baselines3')} with DummyVecEnv). SPS = steps / training time inside the process.\n\n"
        "| implementation | SPS per run | mean SPS | process wall time per run (s) |\n|---|---|---|---|\n"
        f"{rows}\n\n"
        f"**SPS ratio ppo_discrete.py / stable-baselines3: {ratio:.2f}x** "
        f"(per-run ratios {', '.join(f'{a / b:.2f}' for a, b in zip(ours, sb3))}; target >= 1.5x: "
        f"{'met' if ratio >= 1.5 else 'NOT met'}).\n"
    )
    path = write_fragment("speed_ppo", "Speed: ppo_discrete.py vs stable-baselines3 PPO", command, body)
    print(f"ratio {ratio:.2f}; written {path}")


if __name__ == "__main__":
    main()
