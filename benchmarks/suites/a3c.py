"""a3c_pong_hogwild.py: CartPole-v1 with 2 worker processes (article 001's task on a 2-core machine).

The learning figure read from these runs is the test process's greedy evaluation (20 episodes
every 10000 steps), so the return tag is `eval/episodic_return`; the wall time until its
20-episode mean first reaches 475 is computed by `python -m benchmarks.speed_a3c cartpole`.
Run one at a time (`--workers 1`): each run already uses both cores.
"""

from benchmarks.suite import Suite

SUITES = {
    "a3c_cartpole": [
        Suite(
            "a3c-2proc",
            "a3c_pong_hogwild.py",
            ["CartPole-v1"],
            [1, 2, 3],
            args=["--num-processes", "2", "--total-timesteps", "300000"],
            return_tag="eval/episodic_return",
            thresholds={"CartPole-v1": 475},
        ),
    ],
}

# Pong with 2 worker processes (article 002 uses 16): one run at a time (`--workers 1`), each uses
# both cores. The training 20-game mean is `charts/episodic_return`; the test process's greedy whole
# games are `eval/episodic_return`, and `python -m benchmarks.pong_summary` reads both.
SUITES["a3c_pong"] = [
    Suite(
        "a3c-2proc",
        "a3c_pong_hogwild.py",
        ["PongDeterministic-v4"],
        [1, 2, 3],
        args=["--num-processes", "2", "--total-timesteps", "1600000", "--save-model"],
        thresholds={"PongDeterministic-v4": 18},
    ),
]
