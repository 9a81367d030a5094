"""A benchmark suite: one script run on some environments with some seeds.

Suites live in `benchmarks/suites/<file>.py`, each file defining
`SUITES: dict[str, list[Suite]]` (suite name -> the Suites it runs), for example::

    from benchmarks.suite import Suite

    SUITES = {
        "ppo_discrete": [
            Suite("ppo_discrete", "ppo_discrete.py", ["CartPole-v1", "Acrobot-v1"], [1, 2, 3],
                  thresholds={"CartPole-v1": 475, "Acrobot-v1": -90}),
        ],
    }

`python -m benchmarks run ppo_discrete` then runs every (env, seed) of every Suite in the list.
"""

import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent


@dataclass
class Suite:
    label: str
    """the row name in the tables and the legend in the plots (also a directory name)"""
    script: str
    """the script to run, relative to the repository root (e.g. `ppo_discrete.py`)"""
    env_ids: list
    """environment ids, each passed as `--env-id`"""
    seeds: list
    """seeds, each passed as `--seed`"""
    args: tuple = ()
    """extra command-line arguments, appended after `--env-id E --seed S`"""
    return_tag: str = "charts/episodic_return"
    """the TensorBoard tag holding one scalar per finished episode"""
    thresholds: dict = field(default_factory=dict)
    """env id -> return; the summary reports the first step at which the 20-episode mean reaches it"""

    def __post_init__(self):
        self.env_ids = list(self.env_ids)
        self.seeds = [int(s) for s in self.seeds]
        self.args = tuple(str(a) for a in self.args)
        self.thresholds = dict(self.thresholds)
        if not self.env_ids or not self.seeds:
            raise ValueError(f"suite {self.label!r} needs at least one env id and one seed")
        if not self.label or "/" in self.label:
            raise ValueError(f"suite label {self.label!r} must be a non-empty name without '/'")

    def command(self, env_id: str, seed: int, python: str) -> list:
        return [python, str(ROOT / self.script), "--env-id", env_id, "--seed", str(seed), *self.args]


def safe_name(env_id: str) -> str:
    """A path-safe form of an env id (`ALE/Pong-v5` -> `ALE-Pong-v5`), as the scripts' run names."""
    return env_id.replace("/", "-").replace(":", "-")


def discover_suites() -> dict:
    """All suites of `benchmarks/suites/*.py`: {suite name: [Suite, ...]}; a name defined twice is an error."""
    from benchmarks import suites as package

    found: dict = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"benchmarks.suites.{info.name}")
        for name, members in getattr(module, "SUITES", {}).items():
            if name in found:
                raise ValueError(f"suite {name!r} is defined twice (again in benchmarks/suites/{info.name}.py)")
            pairs = [(m.label, e) for m in members for e in m.env_ids]
            if len(set(pairs)) != len(pairs):
                raise ValueError(f"suite {name!r} runs the same (label, env id) twice")
            found[name] = list(members)
    return found


def suites_left_out_of_all() -> set:
    """Suite names that `python -m benchmarks all` skips: those a suite file lists in
    `NOT_IN_ALL` (runs meant for a bigger machine); `run NAME` still runs them."""
    from benchmarks import suites as package

    names: set = set()
    for info in pkgutil.iter_modules(package.__path__):
        names |= set(getattr(importlib.import_module(f"benchmarks.suites.{info.name}"), "NOT_IN_ALL", ()))
    return names
