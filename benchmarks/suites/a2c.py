"""a2c_atari_lstm.py on Breakout, the article's defaults, a fixed CPU budget, 2 seeds.

The step budget is what two seeds at once fit into about an hour of a 2-core machine; raise
`STEPS` on a bigger machine. Pong (`a2c_pong`, `a2c_pong_study`) is run on its own: see below.
"""

from benchmarks.suite import Suite

STEPS = 2_000_000
# the Pong runs take hours on 2 cores: `python -m benchmarks all` leaves them out
NOT_IN_ALL = {"a2c_pong", "a2c_pong_study", "a2c_pong_10m", "a2c_pong_factors", "a2c_pong_candidates"}

# the one-flag changes of the Pong study: label -> flags
STUDY = {
    "ent-coef-0.1": ["--ent-coef", "0.1"],  # the article's effective entropy weight (a sum of 5 step means)
    "ent-coef-0.01": ["--ent-coef", "0.01"],  # A3C's weight relative to its policy term (and SB3's default)
    "max-grad-norm-5": ["--max-grad-norm", "5"],  # a 10x looser gradient clip
    "learning-rate-4e-4": ["--learning-rate", "4e-4"],  # 4x the step size
    "num-steps-20": ["--num-steps", "20"],  # 20-step returns, as A3C's rollouts (and 4x fewer updates per step)
}

# the factors of the longer study, each run to 3M steps (the 750k study ended before any run left the
# uniform policy): label -> flags, one factor at a time against the defaults
FACTORS = {
    "rmsprop-7e-4-16-envs": ["--optimizer", "rmsprop", "--learning-rate", "7e-4", "--num-envs", "16"],  # usual A2C
    "actor-init-0.01": ["--actor-init-std", "0.01"],  # a3c_pong_hogwild.py's actor head scale
    "frame-size-42": ["--frame-size", "42"],  # a3c_pong_hogwild.py's frame size (4 stacked, not normalised)
    # a3c_pong_hogwild.py's losses summed over the rollout instead of averaged: 5 steps x 8 games, 40x the gradient.
    # Adam's step ignores the loss scale (but for its eps) and the clip does not: 40x the loss is the clip / 40
    "summed-losses": ["--max-grad-norm", str(0.5 / 40)],
}

# changes run from scratch to the defaults' full 10M budget: a new default must reach 18 markedly sooner
CANDIDATES = {
    # past 4M steps the defaults' entropy stays at 1.65-1.72 (uniform: 1.79) while the score creeps up: half the
    # entropy weight, A3C's weight relative to its policy term and the usual A2C value
    "ent-coef-0.01": ["--ent-coef", "0.01"],
}


def long_pong_runs(changes: dict, steps: int) -> list:
    """A checkpointed Pong run of seed 1 per change (label -> flags), saved and evaluated at the end."""
    args = ["--total-timesteps", str(steps), "--checkpoint-interval", "250000", "--save-model"]
    return [
        Suite(
            label,
            "a2c_atari_lstm.py",
            ["PongNoFrameskip-v4"],
            [1],
            args=[*args, *change],
            thresholds={"PongNoFrameskip-v4": 18},
        )
        for label, change in changes.items()
    ]


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
    # Pong with the article's defaults, 3M agent steps (12M frames, ~1 h on 2 cores), checkpointed so that
    # `--resume runs/<run name>/checkpoint.pt --total-timesteps N` can carry it further
    "a2c_pong": [
        Suite(
            "a2c_atari_lstm",
            "a2c_atari_lstm.py",
            ["PongNoFrameskip-v4"],
            [1],
            args=["--total-timesteps", "3000000", "--checkpoint-interval", "500000", "--save-model"],
            thresholds={"PongNoFrameskip-v4": 18},
        ),
    ],
    # why A2C learns Pong more slowly than A3C: one default changed at a time, seed 1, 750k steps each,
    # compared with the first 750k steps of `a2c_pong` (the same seed and command otherwise);
    # `python -m benchmarks.a2c_pong_study` tabulates them
    "a2c_pong_study": [
        Suite(label, "a2c_atari_lstm.py", ["PongNoFrameskip-v4"], [1], args=["--total-timesteps", "750000", *change])
        for label, change in STUDY.items()
    ],
    # the defaults to the script's full budget, checkpointed every 250k steps so that `--resume` carries it on
    "a2c_pong_10m": long_pong_runs({"a2c_atari_lstm": []}, 10_000_000),
    "a2c_pong_factors": long_pong_runs(FACTORS, 3_000_000),
    "a2c_pong_candidates": long_pong_runs(CANDIDATES, 10_000_000),
}
