"""PPO for discrete actions on any gymnasium environment with a flat Box observation.

Follows the article "PPO算法实践(基于cleanrl)" (http://www.kler.cn/a/409694.html, code at
https://github.com/acezsq/rlCode/blob/main/ppo_new.py), itself an adaptation of cleanrl's
ppo.py (https://github.com/vwxyzjn/cleanrl) to a single environment and custom gym envs.

Usage:
    python ppo_discrete.py --env-id CartPole-v1
    python ppo_discrete.py --env-id Acrobot-v1 --seed 2 --save-model
    python ppo_discrete.py --env-id my_package.my_module:MyEnv-v0   # your own registered env
    python ppo_discrete.py --num-envs 1 --num-steps 512            # the article's single-env mode

Departures from the article:
- vectorised environments (4 by default, batch 512 as 4 x 128); `--num-envs 1 --num-steps 512`
  is the article's single-environment set-up with the same batch;
- gymnasium 1.x API; the vector env resets sub-environments in the same step
  (`AutoresetMode.SAME_STEP`), so no stored transition links one episode to the next;
- time-limit truncation is bootstrapped from the critic's value of the final observation,
  termination is not (the article treats both as termination);
- `--save-model` saves atomically and evaluates; `--save-demos-episodes` exports expert
  demonstrations for bc_cartpole.py / gail_cartpole.py.
"""

import contextlib
import io
import os
import random
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass
from typing import Optional

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
import tyro
from torch.utils.tensorboard import SummaryWriter


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
    """the id of the environment: a registered id or `module:EnvId` for your own env"""
    total_timesteps: int = 500000
    """total environment steps of the experiment, summed over the parallel environments"""

    # Algorithm specific arguments
    learning_rate: float = 2.5e-4
    """the learning rate of the optimizer"""
    num_envs: int = 4
    """the number of parallel environments (`--num-envs 1 --num-steps 512` is the article's single-env mode)"""
    num_steps: int = 128
    """the number of steps run in each environment per rollout (batch = num_envs x num_steps)"""
    anneal_lr: bool = True
    """if toggled, the learning rate decays linearly to 0 over the run"""
    gamma: float = 0.99
    """the discount factor gamma"""
    gae_lambda: float = 0.95
    """the lambda for the generalised advantage estimate"""
    num_minibatches: int = 4
    """the number of minibatches the batch is split into"""
    update_epochs: int = 4
    """the number of epochs over the batch per update"""
    norm_adv: bool = True
    """if toggled, advantages are normalised per minibatch"""
    clip_coef: float = 0.2
    """the surrogate clipping coefficient"""
    clip_vloss: bool = True
    """if toggled, the value loss is clipped as in the PPO paper's implementation"""
    ent_coef: float = 0.01
    """coefficient of the entropy bonus"""
    vf_coef: float = 0.5
    """coefficient of the value loss"""
    max_grad_norm: float = 0.5
    """the maximum norm for gradient clipping"""
    target_kl: Optional[float] = None
    """stop the epochs of an update early when the approximate KL exceeds this"""
    eval_episodes: int = 10
    """the number of evaluation episodes run with the saved model (with `--save-model`)"""
    save_demos_episodes: int = 0
    """with `--save-model`: also sample this many episodes of the trained policy to `demos.npz`"""
    torch_threads: int = 1
    """torch CPU threads (1 is fastest for this small network)"""


def fail(message: str) -> None:
    """A user error: one line on stderr (a multi-line message, e.g. from an exception, is joined),
    exit status 2, before anything is written."""
    print("error: " + " ".join(message.split()), file=sys.stderr)
    sys.exit(2)


def parse_args() -> Args:
    """`tyro.cli(Args)`, with a parse error (a bad value, an unknown flag) shortened from tyro's box to
    one `error:` line; --help is untouched."""
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            return tyro.cli(Args)
    except SystemExit as e:
        box = [line.strip("│╭╰─ ") for line in captured.getvalue().splitlines()]
        message = []
        for line in box[1:]:  # box[0] is the title bar; the message runs to the first rule
            if not line:
                break
            message.append(line)
        if e.code == 2 and message:
            guess = box[box.index("Perhaps you meant:") + 1].split()[0] if "Perhaps you meant:" in box else ""
            fail(" ".join(message) + (f" (did you mean {guess}?)" if guess else " (see --help)"))
        sys.stderr.write(captured.getvalue())
        raise


def validate_args(args: Args) -> None:
    for name in ("total_timesteps", "num_envs", "num_steps", "num_minibatches", "update_epochs"):
        if getattr(args, name) <= 0:
            fail(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(args, name)}")
    batch_size = args.num_envs * args.num_steps
    if batch_size % args.num_minibatches != 0:
        fail(
            f"--num-minibatches {args.num_minibatches} does not divide the batch "
            f"num_envs x num_steps = {batch_size}"
        )
    if args.total_timesteps < batch_size:
        fail(f"--total-timesteps {args.total_timesteps} is smaller than one batch ({batch_size})")
    if args.learning_rate <= 0:
        fail(f"--learning-rate must be positive, got {args.learning_rate}")
    if not 0.0 < args.gamma <= 1.0 or not 0.0 <= args.gae_lambda <= 1.0:
        fail("--gamma must be in (0, 1] and --gae-lambda in [0, 1]")
    if args.clip_coef <= 0 or args.max_grad_norm <= 0:
        fail("--clip-coef and --max-grad-norm must be positive")
    if args.eval_episodes < 0 or args.save_demos_episodes < 0:
        fail("--eval-episodes and --save-demos-episodes must be >= 0")
    if args.save_demos_episodes > 0 and not args.save_model:
        fail("--save-demos-episodes needs --save-model")
    if args.torch_threads <= 0:
        fail(f"--torch-threads must be a positive integer, got {args.torch_threads}")
    if args.track:
        try:
            import wandb  # noqa: F401
        except ImportError:
            fail("--track needs Weights and Biases: pip install wandb")
    if args.capture_video:
        try:
            import moviepy  # noqa: F401
        except ImportError:
            fail('--capture-video needs moviepy: pip install -e ".[video]"')


def check_env(env_id: str) -> None:
    """Build the env once to check that it exists and that its spaces are supported."""
    try:
        env = gym.make(env_id)
    except Exception as e:  # unknown id, missing module, env constructor error
        fail(f"--env-id {env_id!r} cannot be made: {type(e).__name__}: {e}")
    action_space, observation_space = env.action_space, env.observation_space
    env.close()
    if not isinstance(action_space, gym.spaces.Discrete):
        fail(f"--env-id {env_id!r} has action space {action_space}; this script needs Discrete actions")
    if not isinstance(observation_space, gym.spaces.Box):
        fail(f"--env-id {env_id!r} has observation space {observation_space}; this script needs a Box")


def make_run_name(args) -> str:
    safe_env_id = args.env_id.replace("/", "-").replace(":", "-")
    return f"{safe_env_id}__{args.exp_name}__{args.seed}__{int(time.time())}"


def make_writer(args, run_name: str) -> SummaryWriter:
    if args.track:
        import wandb

        wandb.init(project=args.exp_name, sync_tensorboard=True, config=vars(args), name=run_name, save_code=True)
    writer = SummaryWriter(f"runs/{run_name}")
    writer.add_text(
        "hyperparameters",
        "|param|value|\n|-|-|\n%s" % ("\n".join([f"|{key}|{value}|" for key, value in vars(args).items()])),
    )
    return writer


def seed_everything(seed: int, torch_deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = torch_deterministic


def log_episode_stats(writer, infos: dict, global_step: int, recent_returns: deque) -> None:
    """Log the episodes that ended in this step (vector RecordEpisodeStatistics infos)."""
    if "_episode" not in infos:
        return
    ended = infos["_episode"]
    for ret, length in zip(infos["episode"]["r"][ended], infos["episode"]["l"][ended]):
        writer.add_scalar("charts/episodic_return", float(ret), global_step)
        writer.add_scalar("charts/episodic_length", int(length), global_step)
        recent_returns.append(float(ret))


def make_env(env_id: str, idx: int, capture_video: bool, run_name: str):
    def thunk():
        if capture_video and idx == 0:
            env = gym.make(env_id, render_mode="rgb_array")
            env = gym.wrappers.RecordVideo(env, f"videos/{run_name}")
        else:
            env = gym.make(env_id)
        if len(env.observation_space.shape) != 1:
            env = gym.wrappers.FlattenObservation(env)
        return env

    return thunk


def make_vector_env(args, run_name: str) -> gym.vector.VectorEnv:
    envs = gym.vector.SyncVectorEnv(
        [make_env(args.env_id, i, args.capture_video, run_name) for i in range(args.num_envs)],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
    )
    return gym.wrappers.vector.RecordEpisodeStatistics(envs)


def layer_init(layer: nn.Module, std: float = np.sqrt(2), bias_const: float = 0.0) -> nn.Module:
    torch.nn.init.orthogonal_(layer.weight, std)
    torch.nn.init.constant_(layer.bias, bias_const)
    return layer


class Agent(nn.Module):
    """Separate 64-64 tanh actor and critic, as in the article."""

    def __init__(self, obs_dim: int, num_actions: int):
        super().__init__()
        self.critic = nn.Sequential(
            layer_init(nn.Linear(obs_dim, 64)),
            nn.Tanh(),
            layer_init(nn.Linear(64, 64)),
            nn.Tanh(),
            layer_init(nn.Linear(64, 1), std=1.0),
        )
        self.actor = nn.Sequential(
            layer_init(nn.Linear(obs_dim, 64)),
            nn.Tanh(),
            layer_init(nn.Linear(64, 64)),
            nn.Tanh(),
            layer_init(nn.Linear(64, num_actions), std=0.01),
        )

    def get_value(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic(x)

    def get_action_and_value(self, x: torch.Tensor, action: Optional[torch.Tensor] = None):
        """Sample an action (or score the given one): action, log-probability, entropy, value.

        The categorical distribution is written out with `log_softmax` rather than built as a
        `torch.distributions.Categorical`: the same numbers, at a fraction of the overhead on the
        small batches of an RL update."""
        log_probs = torch.log_softmax(self.actor(x), dim=-1)
        if action is None:
            action = torch.multinomial(log_probs.exp(), 1).squeeze(-1)
        logprob = log_probs.gather(-1, action.unsqueeze(-1)).squeeze(-1)
        entropy = -(log_probs.exp() * log_probs).sum(-1)
        return action, logprob, entropy, self.critic(x)

    def act(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Rollout fast path: `get_action_and_value` without the entropy, value squeezed."""
        log_probs = torch.log_softmax(self.actor(x), dim=-1)
        action = torch.multinomial(log_probs.exp(), 1)
        return action.squeeze(-1), log_probs.gather(-1, action).squeeze(-1), self.critic(x).squeeze(-1)


def compute_gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    dones: torch.Tensor,
    final_values: torch.Tensor,
    last_value: torch.Tensor,
    gamma: float,
    gae_lambda: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimates and returns for a (num_steps, num_envs) rollout.

    `dones[t]` is 1 where the episode ended *by* step t (terminated or truncated); the
    observation after such a step belongs to a new episode, so the recursion is cut there and
    the step is bootstrapped from `final_values[t]` instead: the critic's value of the final
    observation for a truncation, 0 for a termination. `last_value` is the value of the
    observation that follows the last step of the rollout.
    """
    next_values = torch.cat([values[1:], last_value.unsqueeze(0)])
    next_values = torch.where(dones.bool(), final_values, next_values)
    deltas = rewards + gamma * next_values - values
    discounts = gamma * gae_lambda * (1.0 - dones)  # 0 where the episode ended: the recursion stops
    advantages = torch.zeros_like(rewards)
    lastgaelam = torch.zeros_like(last_value)
    for t in reversed(range(rewards.shape[0])):
        lastgaelam = deltas[t] + discounts[t] * lastgaelam
        advantages[t] = lastgaelam
    return advantages, advantages + values


def ppo_losses(
    newlogprob: torch.Tensor,
    oldlogprob: torch.Tensor,
    advantages: torch.Tensor,
    newvalue: torch.Tensor,
    oldvalue: torch.Tensor,
    returns: torch.Tensor,
    clip_coef: float,
    clip_vloss: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The clipped surrogate policy loss and the (optionally clipped) value loss."""
    ratio = (newlogprob - oldlogprob).exp()
    pg_loss1 = -advantages * ratio
    pg_loss2 = -advantages * torch.clamp(ratio, 1 - clip_coef, 1 + clip_coef)
    pg_loss = torch.max(pg_loss1, pg_loss2).mean()
    if clip_vloss:
        v_loss_unclipped = (newvalue - returns) ** 2
        v_clipped = oldvalue + torch.clamp(newvalue - oldvalue, -clip_coef, clip_coef)
        v_loss_clipped = (v_clipped - returns) ** 2
        v_loss = 0.5 * torch.max(v_loss_unclipped, v_loss_clipped).mean()
    else:
        v_loss = 0.5 * ((newvalue - returns) ** 2).mean()
    return pg_loss, v_loss


def make_storage(num_steps: int, num_envs: int, obs_dim: int, device: torch.device) -> dict:
    def zeros(*shape):
        return torch.zeros((num_steps, num_envs) + shape, device=device)

    return {
        "obs": zeros(obs_dim),
        "actions": zeros(),
        "logprobs": zeros(),
        "rewards": zeros(),
        "dones": zeros(),
        "values": zeros(),
        "final_values": zeros(),
    }


@torch.inference_mode()
def collect_rollout(agent, envs, next_obs, storage, global_step, writer, recent_returns, device):
    """Step the vector env `num_steps` times, filling `storage` in place.

    The vector env autoresets in the same step (SAME_STEP), so the observation returned for a
    finished sub-environment is the first of its next episode; the final observation of the
    ended episode comes in `infos["final_obs"]` and is only used to bootstrap truncations.
    """
    num_steps, num_envs = storage["rewards"].shape
    final_values = np.zeros((num_steps, num_envs), dtype=np.float32)
    for step in range(num_steps):
        global_step += num_envs
        storage["obs"][step] = next_obs
        action, logprob, value = agent.act(next_obs)
        storage["actions"][step] = action
        storage["logprobs"][step] = logprob
        storage["values"][step] = value

        obs, reward, terminations, truncations, infos = envs.step(action.cpu().numpy())
        storage["rewards"][step] = torch.from_numpy(reward.astype(np.float32))
        storage["dones"][step] = torch.from_numpy(terminations | truncations)
        truncated_only = np.flatnonzero(truncations & ~terminations)
        if len(truncated_only):
            final_obs = np.stack(infos["final_obs"][truncated_only]).astype(np.float32)
            final_values[step, truncated_only] = agent.get_value(torch.as_tensor(final_obs, device=device)).flatten().cpu().numpy()
        next_obs = torch.as_tensor(obs, dtype=torch.float32, device=device)
        if "_episode" in infos:
            log_episode_stats(writer, infos, global_step, recent_returns)
    storage["final_values"].copy_(torch.from_numpy(final_values))
    return next_obs, global_step


def save_model(agent: nn.Module, args: Args, path: str) -> None:
    """Atomic save: a half-written file never replaces a good one."""
    tmp_path = path + ".tmp"
    torch.save({"model": agent.state_dict(), "args": vars(args)}, tmp_path)
    os.replace(tmp_path, path)


def load_model(path: str, device: torch.device = torch.device("cpu")) -> tuple[Agent, dict]:
    """Load a `--save-model` file: returns the agent (in eval mode) and the Args as a dict."""
    checkpoint = torch.load(path, map_location=device, weights_only=True)
    state = checkpoint["model"]
    obs_dim = state["critic.0.weight"].shape[1]
    num_actions = state["actor.4.weight"].shape[0]
    agent = Agent(obs_dim, num_actions).to(device)
    agent.load_state_dict(state)
    return agent.eval(), checkpoint["args"]


@torch.no_grad()
def run_episodes(agent, env_id: str, num_episodes: int, seed: int, device, greedy: bool = False):
    """Play whole episodes with `agent`; returns (returns, lengths, obs, actions) of every step."""
    env = gym.make(env_id)
    if len(env.observation_space.shape) != 1:
        env = gym.wrappers.FlattenObservation(env)
    returns, lengths, all_obs, all_actions = [], [], [], []
    for episode in range(num_episodes):
        obs, _ = env.reset(seed=seed + episode)
        done, ep_return, ep_length = False, 0.0, 0
        while not done:
            x = torch.as_tensor(obs, dtype=torch.float32, device=device).unsqueeze(0)
            if greedy:
                action = agent.actor(x).argmax(dim=1)
            else:
                action, _, _, _ = agent.get_action_and_value(x)
            all_obs.append(np.asarray(obs, dtype=np.float32))
            all_actions.append(int(action.item()))
            obs, reward, terminated, truncated, _ = env.step(int(action.item()))
            done = terminated or truncated
            ep_return += float(reward)
            ep_length += 1
        returns.append(ep_return)
        lengths.append(ep_length)
    env.close()
    return returns, lengths, np.stack(all_obs), np.asarray(all_actions, dtype=np.int64)


class StopOnInterrupt:
    """SIGINT handler: the first Ctrl-C asks the training loop to stop after the current iteration
    (so the writer is closed and the model saved cleanly); a second one aborts at once."""

    def __init__(self):
        self.requested = False

    def __call__(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("interrupted: stopping after this iteration (Ctrl-C again to abort)", file=sys.stderr, flush=True)


def format_seconds(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


if __name__ == "__main__":
    args = parse_args()
    validate_args(args)
    check_env(args.env_id)
    args.batch_size = int(args.num_envs * args.num_steps)
    args.minibatch_size = int(args.batch_size // args.num_minibatches)
    args.num_iterations = args.total_timesteps // args.batch_size
    run_name = make_run_name(args)
    writer = make_writer(args, run_name)

    # seeding
    seed_everything(args.seed, args.torch_deterministic)
    torch.set_num_threads(args.torch_threads)
    device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")

    # env setup
    envs = make_vector_env(args, run_name)
    obs_dim = int(np.prod(envs.single_observation_space.shape))
    num_actions = int(envs.single_action_space.n)
    agent = Agent(obs_dim, num_actions).to(device)
    optimizer = optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5, fused=device.type in ("cpu", "cuda"))
    model_path = f"runs/{run_name}/{args.exp_name}.pt"

    # storage
    storage = make_storage(args.num_steps, args.num_envs, obs_dim, device)
    envs.action_space.seed(args.seed)
    obs, _ = envs.reset(seed=args.seed)
    next_obs = torch.as_tensor(obs, dtype=torch.float32, device=device)
    global_step = 0
    recent_returns = deque(maxlen=20)
    print_every = max(1, args.num_iterations // 100)
    start_time = time.time()
    stop = StopOnInterrupt()
    signal.signal(signal.SIGINT, stop)

    for iteration in range(1, args.num_iterations + 1):
        if stop.requested:
            break
        if args.anneal_lr:
            frac = 1.0 - (iteration - 1.0) / args.num_iterations
            optimizer.param_groups[0]["lr"] = frac * args.learning_rate

        # rollout
        next_obs, global_step = collect_rollout(
            agent, envs, next_obs, storage, global_step, writer, recent_returns, device
        )

        # advantages
        with torch.no_grad():
            last_value = agent.get_value(next_obs).flatten()
            advantages, returns = compute_gae(
                storage["rewards"],
                storage["values"],
                storage["dones"],
                storage["final_values"],
                last_value,
                args.gamma,
                args.gae_lambda,
            )
        b_obs = storage["obs"].reshape(-1, obs_dim)
        b_logprobs = storage["logprobs"].reshape(-1)
        b_actions = storage["actions"].reshape(-1).long()
        b_advantages = advantages.reshape(-1)
        b_returns = returns.reshape(-1)
        b_values = storage["values"].reshape(-1)

        # update
        clipfracs = []
        for epoch in range(args.update_epochs):
            b_inds = torch.randperm(args.batch_size, device=device)
            for start in range(0, args.batch_size, args.minibatch_size):
                mb_inds = b_inds[start : start + args.minibatch_size]
                _, newlogprob, entropy, newvalue = agent.get_action_and_value(b_obs[mb_inds], b_actions[mb_inds])
                logratio = newlogprob - b_logprobs[mb_inds]
                with torch.no_grad():
                    ratio = logratio.exp()
                    old_approx_kl = (-logratio).mean()
                    approx_kl = ((ratio - 1) - logratio).mean()
                    clipfracs.append(((ratio - 1.0).abs() > args.clip_coef).float().mean())
                mb_advantages = b_advantages[mb_inds]
                if args.norm_adv:
                    mb_advantages = (mb_advantages - mb_advantages.mean()) / (mb_advantages.std() + 1e-8)
                pg_loss, v_loss = ppo_losses(
                    newlogprob,
                    b_logprobs[mb_inds],
                    mb_advantages,
                    newvalue.view(-1),
                    b_values[mb_inds],
                    b_returns[mb_inds],
                    args.clip_coef,
                    args.clip_vloss,
                )
                entropy_loss = entropy.mean()
                loss = pg_loss - args.ent_coef * entropy_loss + v_loss * args.vf_coef
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
                optimizer.step()
            if args.target_kl is not None and approx_kl > args.target_kl:
                break

        # logging
        y_pred, y_true = b_values, b_returns
        var_y = torch.var(y_true)
        explained_var = float("nan") if var_y == 0 else float(1 - torch.var(y_true - y_pred) / var_y)
        elapsed = time.time() - start_time
        sps = int(global_step / elapsed)
        writer.add_scalar("charts/learning_rate", optimizer.param_groups[0]["lr"], global_step)
        writer.add_scalar("losses/value_loss", v_loss.item(), global_step)
        writer.add_scalar("losses/policy_loss", pg_loss.item(), global_step)
        writer.add_scalar("losses/entropy", entropy_loss.item(), global_step)
        writer.add_scalar("losses/old_approx_kl", old_approx_kl.item(), global_step)
        writer.add_scalar("losses/approx_kl", approx_kl.item(), global_step)
        writer.add_scalar("losses/clipfrac", torch.stack(clipfracs).mean().item(), global_step)
        writer.add_scalar("losses/explained_variance", explained_var, global_step)
        writer.add_scalar("charts/SPS", sps, global_step)
        if iteration % print_every == 0 or iteration == args.num_iterations:
            mean_return = f"{np.mean(recent_returns):8.2f}" if recent_returns else "     n/a"
            left = elapsed / global_step * (args.total_timesteps - global_step)
            print(
                f"step {global_step:>9d}/{args.total_timesteps} | return(20) {mean_return} | "
                f"SPS {sps:>6d} | elapsed {format_seconds(elapsed)} | left {format_seconds(left)}",
                flush=True,
            )
    # shutdown
    interrupted = stop.requested
    envs.close()
    if args.save_model:
        save_model(agent, args, model_path)
        print(f"model saved to {model_path}")
        if not interrupted and args.eval_episodes > 0:
            eval_agent, _ = load_model(model_path, device)
            eval_returns, _, _, _ = run_episodes(eval_agent, args.env_id, args.eval_episodes, args.seed + 10_000, device)
            for idx, episodic_return in enumerate(eval_returns):
                writer.add_scalar("eval/episodic_return", episodic_return, idx)
            print(f"eval: {len(eval_returns)} episodes, return {np.mean(eval_returns):.2f} ± {np.std(eval_returns):.2f}")
        if not interrupted and args.save_demos_episodes > 0:
            demo_returns, demo_lengths, demo_obs, demo_actions = run_episodes(
                agent, args.env_id, args.save_demos_episodes, args.seed + 20_000, device
            )
            demos_path = f"runs/{run_name}/demos.npz"
            tmp_path = demos_path + ".tmp.npz"
            np.savez(
                tmp_path,
                obs=demo_obs,
                actions=demo_actions,
                episode_returns=np.asarray(demo_returns, np.float32),
                episode_lengths=np.asarray(demo_lengths, np.int64),
            )
            os.replace(tmp_path, demos_path)
            print(f"{len(demo_returns)} demonstration episodes ({len(demo_actions)} pairs) saved to {demos_path}")
    writer.close()
    if args.track:
        import wandb

        wandb.finish()
    if interrupted:
        sys.exit(130)
