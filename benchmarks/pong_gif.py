"""The README's GIFs: a pretrained Pong agent (right paddle) playing the end of a game.

Plays one greedy game with `<script>.py --play MODEL --capture-video`, the script that saved MODEL
(a3c_pong_hogwild.py or a2c_atari_lstm.py; nothing else is written), then keeps every second frame of
the last `--seconds` of the recording.

    python -m benchmarks.pong_gif pretrained/a3c_pong.pt pretrained/a3c_pong.gif
    python -m benchmarks.pong_gif pretrained/a2c_pong.pt pretrained/a2c_pong.gif
"""

import argparse
import subprocess
import sys
import tempfile
from collections import deque
from pathlib import Path

import torch

from benchmarks.suite import ROOT


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pong_gif", description=__doc__)
    parser.add_argument("model")
    parser.add_argument("gif")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--seed", type=int, default=1)
    opts = parser.parse_args()
    import imageio.v2 as imageio
    from PIL import Image

    saved = torch.load(opts.model, map_location="cpu", weights_only=True)
    script = saved.get("script") if isinstance(saved, dict) else None
    if script not in ("a3c_pong_hogwild", "a2c_atari_lstm"):
        sys.exit(f"{opts.model}: not a saved model of a3c_pong_hogwild.py or a2c_atari_lstm.py (its script: {script})")
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, str(ROOT / f"{script}.py"), "--play", str(Path(opts.model).resolve())]
        command += ["--eval-episodes", "1", "--capture-video", "--seed", str(opts.seed)]
        played = subprocess.run(command, cwd=tmp, capture_output=True, text=True)
        print(played.stdout.strip())
        if played.returncode != 0:
            sys.exit(f"play failed: {played.stderr[-2000:]}")
        (video,) = sorted(Path(tmp).rglob("*.mp4"))[:1]
        reader = imageio.get_reader(str(video))
        fps = reader.get_meta_data().get("fps", 30)
        frames = deque(reader, maxlen=int(opts.seconds * fps))
    keep = [Image.fromarray(frame) for frame in list(frames)[::2]]
    keep[0].save(opts.gif, save_all=True, append_images=keep[1:], duration=int(2000 / fps), loop=0, optimize=True)
    print(f"{opts.gif}: {len(keep)} frames from the last {opts.seconds:g} s of {video.name}")


if __name__ == "__main__":
    main()
