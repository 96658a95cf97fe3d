"""Training speed of the hybrid on an accelerator, with Keras and JAX or PyTorch only (no TensorFlow).

Builds the same hybrid model the pipeline trains (src/colorizer/model.py), trains it
on in-memory batches and reports images/s and step time for several batch sizes,
in float32 and mixed precision. Data: real shards exported to .npz (`--export`,
which needs TensorFlow and runs where the pipeline does), or synthetic landscapes.

    python bench/gpu_train.py --backend jax [--data shards.npz] [--image-size 224] \\
        [--batch-sizes 32 64 128 256] [--steps 30] [--out gpu_train.json]
    python bench/gpu_train.py --export data/shards shards.npz   # on the pipeline's machine
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def export(shards: str, out: str, limit: int = 1024) -> None:
    """Real training shards -> .npz of quantised L (N, H, W) and ab (N, H, W, 2), uint8."""
    from colorizer.data import dataset

    lightness, ab = [], []
    for batch in dataset.evaluation(Path(shards), "train", 64, with_info=True).as_numpy_iterator():
        lightness.append(np.rint(batch["L"][..., 0] * 2.55).astype(np.uint8))
        ab.append(np.rint(batch["ab"] + 128).astype(np.uint8))
        if sum(len(x) for x in lightness) >= limit:
            break
    np.savez(out, L=np.concatenate(lightness)[:limit], ab=np.concatenate(ab)[:limit])
    print(f"wrote {out}")


def load_batches(data: str | None, image_size: int, count: int):
    """(x, y) in model units: L/50 - 1 and ab/128."""
    if data:
        saved = np.load(data)
        lightness = saved["L"].astype(np.float32) / 2.55
        ab = saved["ab"].astype(np.float32) - 128
    else:
        from colorizer.data.lab import rgb_to_lab
        from colorizer.prepare.sources.synthetic import CLASSES, generate

        lab = np.stack([rgb_to_lab(generate(0, CLASSES[i % 5], i, image_size)) for i in range(count)])
        lightness, ab = lab[..., 0], lab[..., 1:]
    reps = -(-count // len(lightness))
    x = np.tile(lightness, (reps, 1, 1))[:count, ..., None] / 50.0 - 1.0
    y = np.tile(ab, (reps, 1, 1, 1))[:count] / 128.0
    return x.astype(np.float32), y.astype(np.float32)


def measure(batch_size: int, precision: str, image_size: int, steps: int, x, y) -> dict:
    import keras

    from colorizer.core.config import ModelParams
    from colorizer.model.losses import mse_loss
    from colorizer.model.network import build_model

    keras.mixed_precision.set_global_policy("mixed_float16" if precision == "mixed" else "float32")
    config = ModelParams(arch="hybrid", width=32, skips=True, norm="batch", backbone="none",
                         temperature=0.38, prior_correction=0.0, output_stride=2)
    model = build_model(config, image_size)
    model.compile(keras.optimizers.Adam(1e-3), mse_loss)  # Keras adds loss scaling for mixed_float16
    xb, yb = x[:batch_size], y[:batch_size]
    for _ in range(3):  # compilation and warm-up
        model.train_on_batch(xb, yb)
    started = time.perf_counter()
    for _ in range(steps):
        loss = model.train_on_batch(xb, yb)
    float(np.asarray(loss))  # wait for the device
    seconds = time.perf_counter() - started
    return {"batch_size": batch_size, "precision": precision, "step_ms": 1000 * seconds / steps,
            "images_per_s": batch_size * steps / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("jax", "torch"), default="jax")
    parser.add_argument("--data", help=".npz from --export (default: synthetic landscapes)")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 64, 128, 256])
    parser.add_argument("--precisions", nargs="+", default=["float32", "mixed"], choices=("float32", "mixed"))
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--out", default="gpu_train.json")
    parser.add_argument("--export", nargs=2, metavar=("SHARDS", "NPZ"), help="export real shards and exit")
    args = parser.parse_args()
    if args.export:
        return export(*args.export)
    os.environ["KERAS_BACKEND"] = args.backend
    import keras

    x, y = load_batches(args.data, args.image_size, max(args.batch_sizes))
    device = _device_name(args.backend)
    rows = [measure(b, p, args.image_size, args.steps, x, y) for p in args.precisions for b in args.batch_sizes]
    result = {"backend": keras.backend.backend(), "device": device, "image_size": args.image_size,
              "data": args.data or "synthetic", "results": rows}
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"{device}, keras {keras.__version__} on {args.backend}, {args.image_size}x{args.image_size}")
    for row in rows:
        print(f"batch {row['batch_size']:4}  {row['precision']:8} {row['step_ms']:9.1f} ms/step "
              f"{row['images_per_s']:9.1f} images/s")


def _device_name(backend: str) -> str:
    if backend == "jax":
        import jax

        return str(jax.devices()[0].device_kind)
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"


if __name__ == "__main__":
    main()
