"""Inference: the `colorize` command on one 12-megapixel photo and on a folder of 100 small photos.

Runs the real CLI (colorizer.app.colorize) in a fresh process per case, with the
default network (params.yaml; random weights: speed does not depend on them), and
records its wall time, images/s and peak RSS (the process's resident set, sampled
every 20 ms). The CLI time includes the interpreter, the TensorFlow import and the
model load; `in_process_images_per_s` times colorizer.model.inference.colorize_batch
alone (the CLI's batches of 8), after a warm-up, to separate the two.

Photos: the 12 MP one is a real landscape (Validation Data) upscaled to 4000 x 3000
JPEG; the folder holds the first 100 Validation Data photos (150 x 150).

    python bench/inference.py [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import REPO, machine, photo_folder, save_results

WRAPPER = """
import sys, time
started = time.perf_counter()
from colorizer.app.colorize import main
code = main(sys.argv[1:])
print(f"RESULT {time.perf_counter() - started}", file=sys.stderr)
sys.exit(code)
"""


def default_model(path: Path) -> None:
    import numpy as np

    from colorizer.core.config import load_params
    from colorizer.model import losses
    from colorizer.model.network import build_model, inference_model

    params = load_params(REPO / "params.yaml")
    bins = losses.ab_bins()
    offsets = losses.prior_correction(np.full(len(bins), 1 / len(bins)), params.model.initial_prior_correction)
    inference_model(build_model(params.model, params.data.image_size, bins, offsets)).save(path)


def cli(inputs: Path, model: Path, out: Path) -> dict:
    """Wall time and peak RSS (sampled every 20 ms with psutil; getrusage's maxrss would report the
    forking parent's size for a freshly exec'd child) of one `colorize` run."""
    import psutil

    started = time.perf_counter()
    process = psutil.Popen([sys.executable, "-c", WRAPPER, str(inputs), "--model", str(model), "--out", str(out)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=out.parent)
    peak = [0]

    def sample():
        while process.poll() is None:
            try:
                peak[0] = max(peak[0], process.memory_info().rss)
            except psutil.Error:
                pass
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    _, stderr = process.communicate()
    sampler.join()
    wall = time.perf_counter() - started
    if process.returncode:
        raise RuntimeError(stderr[-3000:])
    line = next(l for l in stderr.splitlines() if l.startswith("RESULT "))
    return {"wall_seconds": round(wall, 2), "main_seconds": round(float(line.split()[1]), 2),
            "peak_rss_mib": round(peak[0] / 2**20, 1)}


def in_process_rate(model_path: Path, photos: list, repeats: int = 2) -> float:
    from colorizer.model.inference import colorize_batch
    from colorizer.model.modelio import load_model

    model = load_model(model_path)
    colorize_batch(model, photos[:1])
    started = time.perf_counter()
    for _ in range(repeats):
        for start in range(0, len(photos), 8):  # the CLI's default batch
            colorize_batch(model, photos[start:start + 8])
    return repeats * len(photos) / (time.perf_counter() - started)


def run(data: Path) -> dict:
    import numpy as np
    from PIL import Image

    sources = sorted((data / "Validation Data").rglob("*.jpg"))[:100]
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        model = work / "model.keras"
        default_model(model)
        big = work / "big" / "photo_12mp.jpg"
        big.parent.mkdir()
        Image.open(sources[0]).convert("RGB").resize((4000, 3000), Image.BICUBIC).save(big, quality=92)
        folder = work / "folder"
        folder.mkdir()
        for source in sources:
            (folder / source.name).write_bytes(source.read_bytes())
        result = {"machine": machine()}
        one = cli(big, model, work / "out_big")
        many = cli(folder, model, work / "out_folder")
        result["photo_12mp"] = {**one, "images_per_s": 1 / one["wall_seconds"],
                                "in_process_images_per_s": in_process_rate(model, [np.asarray(Image.open(big))], 1)}
        small = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.iterdir())]
        result["folder_100x150px"] = {**many, "images": len(sources), "images_per_s": len(sources) / many["wall_seconds"],
                                      "in_process_images_per_s": in_process_rate(model, small)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="Kaggle-style photo folder (default ../shared/data/landscapes)")
    args = parser.parse_args()
    result = run(photo_folder(args.data))
    save_results("inference", result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
