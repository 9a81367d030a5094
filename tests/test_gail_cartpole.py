"""GAIL's discriminator input, loss and reward, checked against values worked out by hand."""

import math

import numpy as np
import pytest
import torch
from conftest import assert_user_error, load_script, run_script


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
