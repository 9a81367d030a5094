"""ppo_discrete.py at its defaults (500k steps) on the classic-control tasks, 3 seeds."""

from benchmarks.suite import Suite

SUITES = {
    "ppo_discrete": [
        Suite(
            "ppo_discrete",
            "ppo_discrete.py",
            ["CartPole-v1", "Acrobot-v1"],
            [1, 2, 3],
            thresholds={"CartPole-v1": 475, "Acrobot-v1": -90},
        ),
    ],
}
