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
        # the article's set-up: 1 expert episode, 30 pairs, 1000 iterations; greedy periodic evaluation;
        # demonstrations recorded from the greedy expert (the script's default)
        Suite(
            "bc-30-pairs",
            "bc_cartpole.py",
            ENVS,
            SEEDS,
            args=["--eval-greedy"],
            return_tag="eval/episodic_return",
            thresholds={"CartPole-v1": 475},
        ),
        # the article's set-up with the article's demonstrations, drawn from the sampling expert
        Suite(
            "bc-30-pairs-sampled-demos",
            "bc_cartpole.py",
            ENVS,
            SEEDS,
            args=["--eval-greedy", "--no-expert-greedy-demos"],
            return_tag="eval/episodic_return",
            thresholds={"CartPole-v1": 475},
        ),
        # the article's set-up trained 3x longer: is the 30-pair policy limited by data or by training?
        Suite(
            "bc-30-pairs-3000-iterations",
            "bc_cartpole.py",
            ENVS,
            SEEDS,
            args=["--eval-greedy", "--bc-iterations", "3000"],
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
