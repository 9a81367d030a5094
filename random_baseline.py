"""Uniform-random policy on any gymnasium environment: the floor every learning curve is read against.

Follows the RandomAgent baseline of the article "DRL 教程 | 如何保持运动小车上的旗杆屹立不倒?
TensorFlow利用A3C算法训练智能体玩CartPole游戏" (https://www.cnblogs.com/alan-blog-TsingHua/p/9733925.html,
a translation of "Deep Reinforcement Learning: Playing CartPole through Asynchronous Advantage Actor
Critic (A3C) with tf.keras and eager execution",
https://medium.com/tensorflow/deep-reinforcement-learning-playing-cartpole-through-asynchronous-advantage-actor-critic-a3c-7eab2eea5296):
play `--num-episodes` whole episodes with actions sampled uniformly from the action space and report the
average score ("about 20 across 4000 episodes" on CartPole-v0 in the article).
Needs: torch, gymnasium, ale-py, tyro, tensorboard, numpy; moviepy and pygame for --capture-video.

Usage:
    python random_baseline.py --env-id CartPole-v1                          # 4000 episodes, as in the article
    python random_baseline.py --env-id Acrobot-v1 --num-episodes 200 --num-envs 4
    python random_baseline.py --env-id PongNoFrameskip-v4 --num-episodes 20  # Atari: 10-30 episodes are plenty
    python random_baseline.py --env-id ALE/Breakout-v5 --num-episodes 20 --seed 2
    python random_baseline.py --env-id BreakoutNoFrameskip-v4 --num-episodes 20 --action-repeat 6  # 10 Hz agent

The last line printed is `Average score across N episodes: mean ± std (min .. max)`.
Where the script departs from the article, and why: docs/scripts/random_baseline.md.
"""

import importlib.util
import math
import os
import random
import signal
import sys
import time
from dataclasses import dataclass
from typing import NoReturn, Optional

import ale_py
import gymnasium as gym
import numpy as np
import torch
import tyro
from torch.utils.tensorboard import SummaryWriter

SCRIPT = "random_baseline"  # recorded in every saved file; --play and --resume check it


@dataclass
class Args:
    exp_name: str = os.path.basename(__file__)[: -len(".py")]
    """the name of this experiment (used in the run name and the saved model's file name)"""
    seed: int = 1
    """seed of the experiment (Python, NumPy, torch and the environments)"""
    torch_deterministic: bool = True
    """if toggled, sets `torch.backends.cudnn.deterministic=True`"""
    cuda: bool = True
    """if toggled, cuda is used when available"""
    track: bool = False
    """if toggled, the run is also tracked with Weights and Biases (needs `pip install wandb`)"""
    capture_video: bool = False
    """if toggled, videos of the first environment are saved to `videos/` (needs the `video` extra)"""
    save_model: bool = False
    """if toggled, the model is saved to `runs/<run name>/<exp_name>.pt` and evaluated"""

    env_id: str = "CartPole-v1"
    """the id of the environment: a registered id (Atari too, e.g. `PongNoFrameskip-v4`) or `module:EnvId`"""

    # Algorithm specific arguments
    num_episodes: int = 4000
    """the number of whole episodes to play (`max_eps` in the article; Atari wants far fewer, e.g. 10-30)"""
    num_envs: int = 1
    """the number of environments stepped together (each plays a fixed share of the episodes)"""
    moving_average_window: int = 100
    """the number of episodes in `charts/moving_average_return` (100, CartPole's "solved" window)"""
    action_repeat: int = 1
    """repeat each sampled action for this many env steps (6 on a NoFrameskip id: the DQN paper's 10 Hz agent)"""


def make_env(env_id: str, idx: int, capture_video: bool, run_name: str):
    def thunk():
        if capture_video and idx == 0:
            env = gym.make(env_id, render_mode="rgb_array")
            env = gym.wrappers.RecordVideo(env, f"videos/{run_name}")
        else:
            env = gym.make(env_id)
        return env

    return thunk


def make_vector_env(args, run_name: str) -> gym.vector.VectorEnv:
    envs = gym.vector.SyncVectorEnv(
        [make_env(args.env_id, i, args.capture_video, run_name) for i in range(args.num_envs)],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
    )
    return gym.wrappers.vector.RecordEpisodeStatistics(envs)


def run_episodes(envs, num_episodes: int, action_repeat: int = 1, on_episode=None, stop=None):
    """Play exactly `num_episodes` whole episodes with uniformly random actions.

    Returns the finished episodes as (global_step, env index, return, length), in the order they
    ended. `on_episode(global_step, ret, length)` is called for every counted episode; a raised
    `stop` flag ends the run early. Episodes an env plays beyond its quota are discarded (the env
    is stepped with the others but not counted).
    """
    quotas = episode_quotas(num_episodes, envs.num_envs)
    done_counts = np.zeros(envs.num_envs, dtype=np.int64)
    since_sampled = np.zeros(envs.num_envs, dtype=np.int64)
    finished, actions, global_step = [], None, 0
    while len(finished) < num_episodes and not (stop is not None and stop.requested):
        actions = sample_actions(envs, actions, since_sampled, action_repeat)
        _, _, terminations, truncations, infos = envs.step(actions)
        global_step += envs.num_envs
        since_sampled += 1
        ended = np.logical_or(terminations, truncations)
        since_sampled[ended] = 0
        for i in np.flatnonzero(ended):
            if done_counts[i] < quotas[i]:
                done_counts[i] += 1
                ret, length = float(infos["episode"]["r"][i]), int(infos["episode"]["l"][i])
                finished.append((global_step, int(i), ret, length))
                if on_episode is not None:
                    on_episode(global_step, ret, length)
    return finished


def episode_quotas(num_episodes: int, num_envs: int) -> np.ndarray:
    """How many episodes each environment plays: an even split, fixed before the run starts.

    Counting the first `num_episodes` episodes to finish, whichever env they come from, would
    over-sample short episodes; a share fixed in advance keeps every episode an unbiased sample.
    """
    return np.array([num_episodes // num_envs + (i < num_episodes % num_envs) for i in range(num_envs)])


def sample_actions(envs, actions, since_sampled: np.ndarray, action_repeat: int):
    """Uniform random actions; with `action_repeat` > 1 an env keeps its action for that many steps."""
    fresh = envs.action_space.sample()
    if action_repeat == 1 or actions is None:
        return fresh
    resample = since_sampled % action_repeat == 0
    mask = resample.reshape((-1,) + (1,) * (np.ndim(fresh) - 1))
    return np.where(mask, fresh, actions)


def main() -> None:
    args = tyro.cli(Args, description=__doc__.splitlines()[0])
    stop = StopFlag()
    validate_args(args)
    gym.register_envs(ale_py)
    check_env(args.env_id)
    run_name = make_run_dir(args)
    writer = make_writer(args, run_name)

    # seeding
    seed_everything(args.seed, args.torch_deterministic)

    # env setup
    envs = make_vector_env(args, run_name)
    envs.action_space.seed(args.seed)
    envs.reset(seed=args.seed)

    # rollout: every counted episode is logged as it ends
    logger = EpisodeLogger(writer, args.num_episodes, args.moving_average_window, time.time())
    run_episodes(envs, args.num_episodes, args.action_repeat, on_episode=logger, stop=stop)

    # logging
    if logger.returns:
        line = summary_line(logger.returns)
        writer.add_text("summary", line)
        print(line)

    # shutdown
    stop.saving = True
    envs.close()
    if args.save_model:
        model_path = f"runs/{run_name}/{args.exp_name}.pt"
        save_summary(args, logger.returns, logger.lengths, model_path)
        print(f"episode returns saved to {model_path} (a random policy has no weights)")
    finish_run(writer, args, stop, run_name)


# ----------------------------------------------------------------------------------------------
# Plumbing: argument checks, run directory and writer, seeding, stopping, saving, console.
# The same code in every script (tests/test_consistency.py); nothing below is the algorithm.
# ----------------------------------------------------------------------------------------------


class UserError(Exception):
    """Bad input. Called from Python, this script's functions raise it; the command line prints it as one
    `error:` line and exits with status 2, having written nothing (the last lines of the file)."""


def fail(message: str) -> NoReturn:
    """A user error, its message on one line."""
    raise UserError(" ".join(message.split()))


def check_args(args, positive=(), non_negative=(), at_most=None) -> None:
    """The checks every script runs before anything is written: float flags finite, the seed within numpy's
    seeding, the fields in `positive` > 0, in `non_negative` >= 0, in `at_most` ({name: bound}) within it,
    a name that makes a file name, and the packages that `--track` and `--capture-video` need."""
    checks = [(name, math.isfinite(v), "a finite number") for name, v in vars(args).items() if isinstance(v, float)]
    checks += [("seed", 0 <= args.seed < 2**32, "in [0, 2**32)")]
    checks += [(name, getattr(args, name) > 0, "positive") for name in positive]
    checks += [(name, getattr(args, name) >= 0, ">= 0") for name in non_negative]
    checks += [(name, getattr(args, name) <= bound, f"at most {bound}") for name, bound in (at_most or {}).items()]
    for name, ok, what in checks:
        if not ok:
            fail(f"--{name.replace('_', '-')} must be {what}, got {getattr(args, name)}")
    if not args.exp_name or "/" in args.exp_name or os.sep in args.exp_name or args.exp_name.startswith("."):
        fail(f"--exp-name {args.exp_name!r} must be a plain file name (no '/', not starting with '.')")
    if args.track and importlib.util.find_spec("wandb") is None:
        fail("--track needs Weights and Biases: pip install wandb")
    if args.capture_video and None in (importlib.util.find_spec("moviepy"), importlib.util.find_spec("pygame")):
        fail('--capture-video needs moviepy and pygame: pip install -e ".[video]"')
    if args.capture_video:  # frames drawn off-screen need no display; SDL would print a false "error:" line
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")


def make_run_name(args) -> str:
    safe_env_id = args.env_id.replace("/", "-").replace(":", "-")
    return f"{safe_env_id}__{args.exp_name}__{args.seed}__{int(time.time())}"


def make_run_dir(args) -> str:
    """Create a new `runs/<run name>/` and return the run name; a run that started in the same second
    under the same name gets `-2`, `-3`, ... A directory that cannot be made is a user error."""
    base = make_run_name(args)
    for n in range(1, 1000):
        run_name = base if n == 1 else f"{base}-{n}"
        try:
            os.makedirs(f"runs/{run_name}")
            return run_name
        except FileExistsError:
            continue
        except OSError as e:  # `runs` is a file, or a directory we may not write to
            fail(f"cannot write the run directory 'runs/{run_name}': {e.strerror or e}")
    fail(f"cannot find a free run directory for 'runs/{base}'")


def make_writer(args, run_name: str, purge_step: Optional[int] = None) -> SummaryWriter:
    """The TensorBoard writer of `runs/<run name>/`, with the hyper-parameters as a text table first. A
    resumed run gives `purge_step`: TensorBoard drops the points the interrupted run logged from it on."""
    try:
        os.makedirs(f"runs/{run_name}", exist_ok=True)
    except OSError as e:
        fail(f"cannot write the run directory 'runs/{run_name}': {e.strerror or e}")
    print(f"run directory: runs/{run_name} (TensorBoard: tensorboard --logdir runs)", flush=True)
    if args.track:
        import wandb

        wandb.init(project=args.exp_name, sync_tensorboard=True, config=vars(args), name=run_name, save_code=True)
    writer = SummaryWriter(f"runs/{run_name}", purge_step=purge_step)
    writer.add_text("hyperparameters", "|param|value|\n|-|-|" + "".join(f"\n|{k}|{v}|" for k, v in vars(args).items()))
    return writer


def seed_everything(seed: int, torch_deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = torch_deterministic


class StopFlag:
    """Ctrl-C (SIGINT) and SIGTERM ask the loop to stop at the end of the current iteration, so that no
    optimizer step is cut in half and the results are saved; the script then exits 130. A second signal
    aborts at once, except while the results are being saved."""

    def __init__(self):
        self.requested = self.saving = False
        signal.signal(signal.SIGINT, self)
        signal.signal(signal.SIGTERM, self)

    def __call__(self, signum, frame):
        name = signal.Signals(signum).name
        if self.saving:
            print(f"{name}: still saving, please wait", file=sys.stderr, flush=True)
        elif self.requested:
            print(f"{name}: aborting", file=sys.stderr, flush=True)
            sys.exit(130)
        else:
            self.requested = True
            print(f"{name}: stopping after this iteration (again to abort)", file=sys.stderr, flush=True)


def atomic_save(obj: dict, path: str) -> None:
    """Write to a temporary file, then rename: a half-written file never replaces a good one."""
    torch.save(obj, path + ".tmp")
    os.replace(path + ".tmp", path)


def format_seconds(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def finish_run(writer, args, stop: StopFlag, run_name: str) -> None:
    """The run's closing tail: the writer (and Weights and Biases) closed, the files the run directory holds
    printed, then exit 130 after a signal."""
    writer.close()
    if args.track:
        import wandb

        wandb.finish()
    files = sorted(os.listdir(f"runs/{run_name}")) if os.path.isdir(f"runs/{run_name}") else []
    saved = ", ".join(name for name in files if not name.startswith("events.out.")) or "TensorBoard logs only"
    print(f"{'stopped' if stop.requested else 'done'}: runs/{run_name} holds {saved}", flush=True)
    if stop.requested:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # all is saved: a late signal must not turn exit 130
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # into a death by that signal while Python shuts down
        sys.exit(130)


def validate_args(args: Args) -> None:
    check_args(
        args,
        positive=["num_episodes", "num_envs", "moving_average_window", "action_repeat"],
        at_most={"num_envs": 1024},
    )


def check_env(env_id: str) -> None:
    """Build the env once to check that it exists."""
    try:
        env = gym.make(env_id)
    except Exception as e:  # unknown id, missing module, env constructor error
        fail(f"--env-id {env_id!r} cannot be made: {type(e).__name__}: {e}")
    env.close()


def summary_line(returns) -> str:
    returns = np.asarray(returns, dtype=np.float64)
    return (
        f"Average score across {len(returns)} episodes: {returns.mean():.2f} ± {returns.std():.2f} "
        f"({returns.min():g} .. {returns.max():g})"
    )


def save_summary(args: Args, returns, lengths, path: str) -> None:
    """The usual `--save-model` file, atomically; a random policy has no weights, so `model` is empty."""
    returns, lengths = torch.tensor(returns, dtype=torch.float64), torch.tensor(lengths, dtype=torch.int64)
    summary = {
        "script": SCRIPT,
        "model": {},
        "args": vars(args),
        "episode_returns": returns,
        "episode_lengths": lengths,
    }
    atomic_save(summary, path)


class EpisodeLogger:
    """TensorBoard and console logging of the counted episodes."""

    def __init__(self, writer, num_episodes: int, window: int, start_time: float):
        self.writer, self.num_episodes, self.window, self.start_time = writer, num_episodes, window, start_time
        self.returns, self.lengths = [], []
        self.print_every = max(1, num_episodes // 20)

    def sps(self, global_step: int) -> int:
        return int(global_step / max(time.time() - self.start_time, 1e-9))

    def __call__(self, global_step: int, ret: float, length: int) -> None:
        self.returns.append(ret)
        self.lengths.append(length)
        moving_average = float(np.mean(self.returns[-self.window :]))
        self.writer.add_scalar("charts/episodic_return", ret, global_step)
        self.writer.add_scalar("charts/episodic_length", length, global_step)
        self.writer.add_scalar("charts/moving_average_return", moving_average, global_step)
        count = len(self.returns)
        if count % self.print_every == 0 or count == self.num_episodes:
            elapsed = time.time() - self.start_time
            left = elapsed / count * (self.num_episodes - count)
            self.writer.add_scalar("charts/SPS", self.sps(global_step), global_step)
            print(
                f"episode {count:>6d}/{self.num_episodes} | step {global_step:>9d} | "
                f"return(avg {self.window}) {moving_average:8.2f} | SPS {self.sps(global_step):>6d} | "
                f"elapsed {format_seconds(elapsed)} | left {format_seconds(left)}",
                flush=True,
            )


if __name__ == "__main__":
    try:
        main()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
