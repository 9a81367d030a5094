"""a2c_atari_lstm.py on Breakout, the article's defaults, a fixed CPU budget, 2 seeds.

The step budget is what two seeds at once fit into about an hour of a 2-core machine; raise
`STEPS` on a bigger machine. Pong at 10M steps (`a2c_pong`) is the long run for a GPU/16-core box.
"""

from benchmarks.suite import Suite

STEPS = 2_000_000
# a 10M-step Pong run takes hours on 2 cores: `python -m benchmarks all` leaves it out
NOT_IN_ALL = {"a2c_pong"}

SUITES = {
    "a2c": [
        Suite(
            "a2c_atari_lstm",
            "a2c_atari_lstm.py",
            ["BreakoutNoFrameskip-v4"],
            [1, 2],
            args=["--total-timesteps", str(STEPS), "--checkpoint-interval", "200000"],
        ),
    ],
    "a2c_pong": [
        Suite(
            "a2c_atari_lstm",
            "a2c_atari_lstm.py",
            ["PongNoFrameskip-v4"],
            [1],
            args=["--total-timesteps", "10000000"],
            thresholds={"PongNoFrameskip-v4": 18},
        ),
    ],
}
