"""The agents in pretrained/ load with the script that trained them and still play Pong well."""

import re

import pytest
from conftest import ROOT, run_script

PRETRAINED = [("a3c_pong_hogwild.py", "a3c_pong.pt"), ("a2c_atari_lstm.py", "a2c_pong.pt")]


@pytest.mark.parametrize("script, model", PRETRAINED)
def test_pretrained_agent_wins_a_greedy_game(script, model, tmp_path):
    # seed 777: no game of the agents' training or evaluation was reset with it
    play = ["--play", str(ROOT / "pretrained" / model), "--eval-episodes", "1", "--seed", "777"]
    result = run_script(script, play, tmp_path)
    assert result.returncode == 0, result.stderr
    score = float(re.search(r"episode 1: score (-?\d+)", result.stdout).group(1))
    assert score >= 18, result.stdout
    assert list(tmp_path.iterdir()) == []  # --play writes nothing
