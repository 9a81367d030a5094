"""The uniform-random floor that the learning curves are read against (random_baseline.py)."""

from benchmarks.suite import Suite

SEEDS = [1, 2, 3]
ATARI = ["PongNoFrameskip-v4", "BreakoutNoFrameskip-v4"]

SUITES = {
    "random_baseline": [
        # the article's figure: 4000 episodes of CartPole
        Suite("random", "random_baseline.py", ["CartPole-v1"], SEEDS, args=["--num-episodes", "4000"]),
        # nearly every random Acrobot episode runs into the 500-step limit: 200 episodes are plenty
        Suite("random", "random_baseline.py", ["Acrobot-v1"], SEEDS, args=["--num-episodes", "200"]),
        # whole Atari games (all lives, raw scores), a new random action every frame
        Suite("random", "random_baseline.py", ATARI, SEEDS, args=["--num-episodes", "20"]),
        # the DQN paper's random agent: a new random action at 10 Hz, i.e. every 6th frame
        Suite(
            "random-10Hz",
            "random_baseline.py",
            ATARI,
            SEEDS,
            args=["--num-episodes", "20", "--action-repeat", "6"],
        ),
    ],
}
