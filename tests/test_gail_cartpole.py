"""GAIL's discriminator input, loss and reward, checked against values worked out by hand."""

import ast
import math
import signal
import sys
from pathlib import Path
from types import SimpleNamespace

import fake_envs
import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import assert_user_error, load_script, read_scalars, run_script


@pytest.fixture(scope="module")
def gail():
    return load_script("gail_cartpole")


def test_one_hot_for_three_actions(gail):
    encoded = gail.one_hot_actions(torch.tensor([2, 0, 1, 2]), 3)
    assert encoded.tolist() == [[0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]]
    assert encoded.dtype == torch.float32
    discriminator = gail.Discriminator(obs_dim=6, num_actions=3, hidden_dim=8)
    assert discriminator.net[0].in_features == 9  # Acrobot: 6 observations + 3 actions
    assert discriminator(torch.zeros(4, 6), torch.tensor([2, 0, 1, 2])).shape == (4,)


def test_discriminator_sees_the_action(gail):
    discriminator = gail.Discriminator(obs_dim=2, num_actions=3, hidden_dim=4)
    with torch.no_grad():
        discriminator.net[0].weight.zero_()
        discriminator.net[0].bias.zero_()
        discriminator.net[0].weight[0, 2 + 1] = 1.0  # hidden unit 0 = 1 exactly when the action is 1
        discriminator.net[2].weight.zero_()
        discriminator.net[2].weight[0, 0] = 2.0
        discriminator.net[2].bias.fill_(-1.0)
    logits = discriminator(torch.zeros(3, 2), torch.tensor([0, 1, 2]))
    assert logits.tolist() == [-1.0, 1.0, -1.0]


def test_discriminator_loss_labels_agent_1_expert_0(gail):
    zero = torch.zeros(3)
    assert gail.discriminator_loss(zero, zero).item() == pytest.approx(2 * math.log(2), abs=1e-6)  # 1.386294
    # D(agent) = 0.9, D(expert) = 0.2: -log 0.9 - log(1 - 0.2) = 0.105361 + 0.223144
    agent, expert = torch.tensor([math.log(9.0)]), torch.tensor([math.log(0.25)])
    assert gail.discriminator_loss(agent, expert).item() == pytest.approx(0.328504, abs=1e-6)
    # swapping the labels' roles costs more: -log 0.2 - log(1 - 0.9) = 1.609438 + 2.302585
    assert gail.discriminator_loss(expert, agent).item() == pytest.approx(3.912023, abs=1e-6)


def test_reward_is_higher_where_the_discriminator_says_expert(gail):
    # D = P(agent) = 0.1 (looks expert) and 0.9 (looks agent): logits ln(1/9) and ln 9
    logits = torch.tensor([math.log(1 / 9), math.log(9.0), 0.0])
    neg_log_d = gail.gail_reward(logits, "neg_log_d")
    assert neg_log_d.tolist() == pytest.approx([2.302585, 0.105361, 0.693147], abs=1e-6)  # -ln 0.1, -ln 0.9, ln 2
    logit = gail.gail_reward(logits, "logit")
    assert logit.tolist() == pytest.approx([2.197225, -2.197225, 0.0], abs=1e-6)  # ln(0.9/0.1), ln(0.1/0.9), 0
    assert neg_log_d[0] > neg_log_d[1] and logit[0] > logit[1]
    assert (gail.gail_reward(torch.linspace(-20, 20, 41), "neg_log_d") > 0).all()  # the article's: always positive
    with pytest.raises(ValueError):
        gail.gail_reward(logits, "other")


@pytest.mark.parametrize(
    "args",
    [
        ["--expert-data", "nope.npz"],
        ["--env-id", "Acrobot-v1", "--expert-data", "three_actions.npz"],
        ["--env-id", "MountainCarContinuous-v0"],
    ],
    ids=["missing", "action-out-of-range", "continuous-actions"],
)
def test_gail_bad_input_exits_2_before_writing(args, tmp_path):
    np.savez(tmp_path / "acrobot_demos.npz", obs=np.zeros((6, 6), np.float32), actions=np.zeros(6, np.int64))
    np.savez(tmp_path / "three_actions.npz", obs=np.zeros((3, 6), np.float32), actions=np.array([0, 1, 3]))
    result = run_script("gail_cartpole.py", args, cwd=tmp_path, timeout=60)
    assert_user_error(result, tmp_path)


def test_absorbing_state_in_the_discriminator_loss(gail):
    zero = torch.zeros(1)
    absorbing = torch.tensor([math.log(9.0)])  # D(absorbing) = 0.9: looks like the agent
    # agent: (ln 2 + 1 x -ln 0.9) / 2 = 0.399254; expert: (ln 2 + 0.5 x -ln 0.1) / 1.5 = 1.229627
    loss = gail.discriminator_loss(zero, zero, absorbing, agent_absorbing=1.0, expert_absorbing=0.5)
    assert loss.item() == pytest.approx(1.628881, abs=1e-6)
    # no absorbing samples on either side: the plain loss
    plain = gail.discriminator_loss(zero, zero, absorbing, 0.0, 0.0)
    assert plain.item() == pytest.approx(gail.discriminator_loss(zero, zero).item(), abs=1e-6)


def test_absorbing_input_is_flagged(gail):
    discriminator = gail.Discriminator(obs_dim=2, num_actions=2, hidden_dim=4, absorbing=True)
    assert discriminator.net[0].in_features == 5
    with torch.no_grad():
        discriminator.net[0].weight.zero_()
        discriminator.net[0].bias.zero_()
        discriminator.net[0].weight[0, 4] = 1.0  # hidden unit 0 reads the absorbing flag only
        discriminator.net[2].weight.zero_()
        discriminator.net[2].weight[0, 0] = 3.0
        discriminator.net[2].bias.zero_()
    assert discriminator.absorbing_logit().tolist() == [3.0]
    assert discriminator(torch.ones(2, 2), torch.tensor([0, 1])).tolist() == [0.0, 0.0]


def test_terminated_fraction(gail):
    # CartPole-v1 (limit 500): the 20- and 30-step episodes terminated, the 500-step one was truncated
    assert gail.terminated_fraction(np.array([500, 20, 30]), 500) == pytest.approx(2 / 550)
    assert gail.terminated_fraction(np.array([500, 20, 30]), None) == pytest.approx(3 / 550)
    assert gail.terminated_fraction(None, 500) == 0.0
    assert gail.max_episode_steps("CartPole-v1") == 500


# --- CartPole-v0, fixed rollouts, and the reward of the updated discriminator -------------------


def balancer_logits(x: torch.Tensor) -> torch.Tensor:
    """A fixed controller that keeps CartPole's pole up for hundreds of steps, as logits."""
    score = 3 * x[:, 2] + x[:, 3] + 0.1 * x[:, 0] + 0.3 * x[:, 1]
    return torch.stack([-score, score], dim=1)


def test_cartpole_v0_episodes_are_truncated_at_200(gail):
    assert gail.max_episode_steps("CartPole-v0") == 200 and gail.reward_threshold("CartPole-v0") == 195
    returns, lengths, _, _ = gail.run_episodes(balancer_logits, "CartPole-v0", 2, 0, "cpu", greedy=True)
    assert lengths == [200, 200] and returns == [200.0, 200.0]
    # the generator's (and the inline expert's) vector env: a truncation at step 200, not a termination
    envs = gail.make_vector_env(SimpleNamespace(env_id="CartPole-v0", num_envs=1, capture_video=False), "test")
    obs, _ = envs.reset(seed=0)
    for step in range(1, 201):
        action = balancer_logits(torch.as_tensor(obs, dtype=torch.float32)).argmax(1).numpy()
        obs, _, terminations, truncations, infos = envs.step(action)
        assert not terminations[0]
        if truncations[0]:
            break
    envs.close()
    assert step == 200 and truncations[0] and int(infos["episode"]["l"][0]) == 200


def test_cartpole_v0_tiny_run(tmp_path):
    args = ["--env-id", "CartPole-v0", "--expert-timesteps", "0", "--total-timesteps", "512"]
    args += ["--num-envs", "2", "--num-steps", "64", "--eval-episodes", "1"]
    result = run_script("gail_cartpole.py", args, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    scalars = read_scalars(run_dir)
    lengths = [value for _, value in scalars["charts/episodic_length"]]
    assert lengths and max(lengths) <= 200
    # one generator update per rollout of 2 x 64 steps, whatever the episodes did
    assert [step for step, _ in scalars["losses/policy_loss"]] == [128, 256, 384, 512]


def run_main(gail, argv: list[str], cwd: Path, monkeypatch) -> None:
    """Execute the body of the script's `if __name__ == "__main__":` block in `gail`'s namespace
    (the module's functions, patched or not, are the globals it calls), in `cwd`."""
    path = Path(gail.__file__)
    tree = ast.parse(path.read_text())
    (main,) = [n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "__name__ == '__main__'"]
    code = compile(ast.Module(body=main.body, type_ignores=[]), str(path), "exec")
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", [path.name, *argv])
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    threads = torch.get_num_threads()
    try:
        exec(code, gail.__dict__)
    finally:
        for s, handler in handlers.items():
            signal.signal(s, handler)
        torch.set_num_threads(threads)


class _CountingEnv(fake_envs.CountingEnv):
    """fake_envs' CountingEnv (every episode lasts 3 steps), taking the `render_mode` keyword that
    the script's `run_episodes` always passes to `gym.make`."""

    def __init__(self, render_mode=None):
        super().__init__(length=3)
        self.render_mode = render_mode


gym.register("GailCounting-v0", entry_point=_CountingEnv)
# every episode lasts 3 steps, so a rollout of 8 steps spans episode ends
COUNTING_ARGS = ["--env-id", "GailCounting-v0", "--expert-timesteps", "0", "--num-expert-samples", "0"]
COUNTING_ARGS += ["--num-envs", "2", "--num-steps", "8", "--num-minibatches", "2", "--update-epochs", "1"]
COUNTING_ARGS += ["--eval-episodes", "1", "--total-timesteps", "90"]


def test_generator_updates_once_per_fixed_rollout_across_episode_ends(tmp_path, monkeypatch):
    """Article 003 updates PPO once per finished episode; here one update per rollout of
    num_envs x num_steps = 16 steps: 90 // 16 = 5 updates, although 3-step episodes end inside them."""
    gail = load_script("gail_cartpole")
    rollouts, updates = [], []
    real_collect, real_update = gail.collect_rollout, gail.ppo_update

    def collect(agent, envs, next_obs, storage, *rest):
        result = real_collect(agent, envs, next_obs, storage, *rest)
        rollouts.append(storage["dones"].clone())
        return result

    def update(agent, optimizer, batch, args):
        updates.append(len(batch["obs"]))
        return real_update(agent, optimizer, batch, args)

    monkeypatch.setattr(gail, "collect_rollout", collect)
    monkeypatch.setattr(gail, "ppo_update", update)
    run_main(gail, COUNTING_ARGS, tmp_path, monkeypatch)
    assert updates == [16] * 5
    assert len(rollouts) == 5 and all(dones.shape == (8, 2) for dones in rollouts)
    # episodes end inside every rollout (not only at its last step), in both envs
    assert all(dones[:-1].sum(0).min() >= 1 for dones in rollouts)
    # 40 steps in each env, 13 episodes of 3 steps: 26 episodes, but 5 updates
    assert sum(int(dones.sum()) for dones in rollouts) == 26
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert [step for step, _ in read_scalars(run_dir)["losses/policy_loss"]] == [16, 32, 48, 64, 80]


@pytest.mark.parametrize("epochs", [1, 2])
def test_generator_reward_comes_from_the_discriminator_after_its_update(tmp_path, monkeypatch, epochs):
    """Every rollout: the discriminator takes its `--discriminator-epochs` steps on the rollout's
    pairs first; the generator's reward is then -log D of the updated discriminator on those same
    pairs, and it is what the advantages are computed from."""
    gail = load_script("gail_cartpole")
    events = []
    real_loss, real_reward, real_advantages = gail.discriminator_loss, gail.gail_reward, gail.rollout_advantages

    class RecordingDiscriminator(gail.Discriminator):
        def forward(self, obs, actions):
            out = super().forward(obs, actions)
            params = torch.cat([p.detach().flatten() for p in self.parameters()]).clone()
            events.append(
                ("forward", dict(obs=obs.clone(), actions=actions.clone(), out=out.detach().clone(), params=params))
            )
            return out

    def loss(agent_logits, expert_logits, *rest):
        events.append(("loss", dict(agent=agent_logits.detach().clone())))
        return real_loss(agent_logits, expert_logits, *rest)

    def reward(logits, reward_type):
        events.append(("reward", dict(logits=logits.clone(), reward_type=reward_type)))
        return real_reward(logits, reward_type)

    def advantages(agent, next_obs, storage, args):
        events.append(("advantages", dict(rewards=storage["rewards"].clone())))
        return real_advantages(agent, next_obs, storage, args)

    monkeypatch.setattr(gail, "Discriminator", RecordingDiscriminator)
    monkeypatch.setattr(gail, "discriminator_loss", loss)
    monkeypatch.setattr(gail, "gail_reward", reward)
    monkeypatch.setattr(gail, "rollout_advantages", advantages)
    run_main(gail, [*COUNTING_ARGS, "--discriminator-epochs", str(epochs)], tmp_path, monkeypatch)

    kinds = [kind for kind, _ in events]
    assert kinds.count("reward") == kinds.count("advantages") == 5
    start = 0
    for _ in range(5):
        r = kinds.index("reward", start)
        segment = events[start:r]
        losses = [data for kind, data in segment if kind == "loss"]
        assert len(losses) == epochs  # the discriminator was trained on this rollout before the reward
        forwards = [data for kind, data in segment if kind == "forward"]
        # the agent pairs the last discriminator step was computed on, and the parameters it saw
        agent_logits = losses[-1]["agent"]
        pre = [f for f in forwards if f["out"].shape == agent_logits.shape and torch.equal(f["out"], agent_logits)][-1]
        kind, post = events[r - 1]
        assert kind == "forward" and torch.equal(post["out"], events[r][1]["logits"])
        assert torch.equal(post["obs"], pre["obs"]) and torch.equal(post["actions"], pre["actions"])
        assert len(post["obs"]) == 16  # the whole rollout
        assert not torch.equal(post["params"], pre["params"])  # D was stepped in between: its updated logits
        assert not torch.allclose(events[r][1]["logits"], agent_logits)
        assert events[r][1]["reward_type"] == "neg_log_d"
        a = kinds.index("advantages", r)
        expected = real_reward(post["out"], "neg_log_d").view(8, 2)
        assert torch.equal(events[a][1]["rewards"], expected)  # the generator learns from these rewards
        start = a + 1
