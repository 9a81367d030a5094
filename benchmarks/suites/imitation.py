"""bc_cartpole.py and gail_cartpole.py on CartPole-v1, 3 seeds, each run training its own PPO expert.

`python -m benchmarks.imitation` reads these runs and writes benchmarks/results/imitation.md
(greedy and sampling returns beside the expert's, steps to 475, the state-distribution check).
"""

from benchmarks.suite import Suite

SEEDS = [1, 2, 3]
ENVS = ["CartPole-v1"]
# the random-policy control: 5 random episodes hold about 110 pairs, of which 30 are drawn as usual
RANDOM_DEMOS = ["--expert-timesteps", "0", "--num-expert-episodes", "5"]

SUITES = {
    "imitation_bc": [
        # the script"s defaults: 1 expert episode recorded greedily, 30 pairs, 1000 iterations, lr 1e-2
        Suite(
            "bc-30-pairs",
            "bc_cartpole.py",
            ENVS,
            SEEDS,
            args=["--eval-greedy"],
            return_tag="eval/episodic_return",
            thresholds={"CartPole-v1": 475},
        ),
        # the article exactly: demonstrations from the sampling expert, lr 1e-3
        Suite(
            "bc-30-pairs-article",
            "bc_cartpole.py",
            ENVS,
            SEEDS,
            args=["--eval-greedy", "--no-expert-greedy-demos", "--bc-learning-rate", "1e-3"],
            return_tag="eval/episodic_return",
            thresholds={"CartPole-v1": 475},
        ),
        # greedy demonstrations alone (the article"s lr 1e-3)
        Suite(
            "bc-30-pairs-greedy-demos-lr1e-3",
            "bc_cartpole.py",
            ENVS,
            SEEDS,
            args=["--eval-greedy", "--bc-learning-rate", "1e-3"],
            return_tag="eval/episodic_return",
            thresholds={"CartPole-v1": 475},
        ),
        # lr 1e-2 alone (demonstrations from the sampling expert)
        Suite(
            "bc-30-pairs-sampled-demos-lr1e-2",
            "bc_cartpole.py",
            ENVS,
            SEEDS,
            args=["--eval-greedy", "--no-expert-greedy-demos"],
            return_tag="eval/episodic_return",
            thresholds={"CartPole-v1": 475},
        ),
        # every pair of the expert episode
        Suite(
            "bc-all-pairs",
            "bc_cartpole.py",
            ENVS,
            SEEDS,
            args=["--eval-greedy", "--num-expert-samples", "0"],
            return_tag="eval/episodic_return",
            thresholds={"CartPole-v1": 475},
        ),
    ],
    "imitation_gail": [
        Suite("gail-expert", "gail_cartpole.py", ENVS, SEEDS, thresholds={"CartPole-v1": 475}),
        Suite(
            "gail-expert-logit",
            "gail_cartpole.py",
            ENVS,
            SEEDS,
            args=["--reward-type", "logit"],
            thresholds={"CartPole-v1": 475},
        ),
        Suite("gail-random-demos", "gail_cartpole.py", ENVS, SEEDS, args=RANDOM_DEMOS, thresholds={"CartPole-v1": 475}),
        Suite(
            "gail-random-demos-logit",
            "gail_cartpole.py",
            ENVS,
            SEEDS,
            args=[*RANDOM_DEMOS, "--reward-type", "logit"],
            thresholds={"CartPole-v1": 475},
        ),
        # the zero-centred reward with a learnt absorbing state for terminations (--absorbing)
        Suite(
            "gail-expert-logit-absorbing",
            "gail_cartpole.py",
            ENVS,
            SEEDS,
            args=["--reward-type", "logit", "--absorbing"],
            thresholds={"CartPole-v1": 475},
        ),
        Suite(
            "gail-random-demos-logit-absorbing",
            "gail_cartpole.py",
            ENVS,
            SEEDS,
            args=[*RANDOM_DEMOS, "--reward-type", "logit", "--absorbing"],
            thresholds={"CartPole-v1": 475},
        ),
    ],
}
