"""Training speed of the default network on an accelerator, with Keras and JAX or PyTorch only (no TensorFlow).

Builds the network and loss the pipeline trains by default (params.yaml's `model`
section and the classification loss over ab bins), trains it on in-memory batches
and reports, for a few batch sizes in float32 and mixed precision: step time,
images/s, FLOPs per training image (colorizer.model.flops, the analytic count the
tests check against TensorFlow's profiler) and the utilisation (MFU) = training
FLOP/s over the device's matmul peak, measured in the same run (float32 matmul for
float32 rows, float16 for mixed). Sized to finish in under 5 minutes on one GPU.
Data: real shards exported to .npz (`--export`, which needs TensorFlow and runs
where the pipeline does), or synthetic landscapes.

    python bench/gpu_train.py --backend jax [--data shards.npz] [--image-size 224] \\
        [--batch-sizes 64 256] [--networks default autoencoder] [--steps 20] [--out gpu_train.json]
    python bench/gpu_train.py --export data/shards shards.npz   # on the pipeline's machine
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/common.py


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


def matmul_peak_tflops(dtype: str, size: int = 8192, repeats: int = 10) -> float:
    """Best-of matmul TFLOP/s of the device in `dtype` (keras.ops on the chosen backend).

    Measured under the backend's default matmul precision, the one the convolutions
    train under (on NVIDIA GPUs JAX lets float32 run as TF32), so MFU compares like with like."""
    import keras

    a = keras.random.normal((size, size), dtype=dtype)
    b = keras.random.normal((size, size), dtype=dtype)
    np.asarray(keras.ops.convert_to_numpy(keras.ops.matmul(a, b)[:1, :1])).item()  # compile, warm up
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(repeats):
            c = keras.ops.matmul(a, b)
        np.asarray(keras.ops.convert_to_numpy(c[:1, :1])).item()  # wait for the device
        best = min(best, (time.perf_counter() - started) / repeats)
    return 2 * size**3 / best / 1e12


def network_config(network: str):
    """params.yaml's model section, or the same network as the plain `autoencoder`."""
    from colorizer.core.config import load_params

    model = load_params(Path(__file__).resolve().parents[1] / "params.yaml").model
    return dataclasses.replace(model, arch="autoencoder") if network == "autoencoder" else model


def measure(network: str, batch_size: int, precision: str, image_size: int, steps: int, x, y, peaks: dict) -> dict:
    import keras

    from colorizer.model import losses
    from colorizer.model.flops import analytic_flops
    from colorizer.model.network import build_model

    keras.mixed_precision.set_global_policy("mixed_float16" if precision == "mixed" else "float32")
    bins = losses.ab_bins()
    model = build_model(network_config(network), image_size, bins)
    # Keras adds loss scaling for mixed_float16; the loss sees the [ab, logits] model's logits.
    model.compile(keras.optimizers.Adam(1e-3), [None, losses.make_loss("classification", bins, None)])
    # The batch goes to the device once: the steps time the model, not host-to-device copies.
    xb = keras.ops.convert_to_tensor(x[:batch_size])
    yb = keras.ops.convert_to_tensor(y[:batch_size])
    started = time.perf_counter()
    for _ in range(3):  # compilation and warm-up
        loss = model.train_on_batch(xb, [yb, yb])
    compile_seconds = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(steps):
        loss = model.train_on_batch(xb, [yb, yb])  # returns host values: each step waits for the device
    seconds = time.perf_counter() - started
    if not np.all(np.isfinite(loss)):
        raise FloatingPointError(f"{network} batch {batch_size} {precision}: loss {loss}")
    images_per_s = batch_size * steps / seconds
    flops = analytic_flops(model)
    peak = peaks["float16" if precision == "mixed" else "float32"]
    return {"network": network, "batch_size": batch_size, "precision": precision, "step_ms": 1000 * seconds / steps,
            "images_per_s": images_per_s, "compile_and_warmup_s": compile_seconds,
            "training_flops_per_image": flops["training"], "forward_flops_per_image": flops["forward"],
            "matmul_peak_tflops": peak, "utilisation": flops["training"] * images_per_s / (peak * 1e12)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("jax", "torch"), default="jax")
    parser.add_argument("--data", help=".npz from --export (default: synthetic landscapes)")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--precisions", nargs="+", default=["float32", "mixed"], choices=("float32", "mixed"))
    parser.add_argument("--networks", nargs="+", default=["default"], choices=("default", "autoencoder"),
                        help="params.yaml's network; 'autoencoder' adds it without the global branch as labelled rows")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--matmul-size", type=int, default=8192, help="square matmul measuring the peak")
    parser.add_argument("--out", default="gpu_train.json", help="bench/gpu_train.json holds the recorded run")
    parser.add_argument("--export", nargs=2, metavar=("SHARDS", "NPZ"), help="export real shards and exit")
    args = parser.parse_args()
    if args.export:
        return export(*args.export)
    os.environ["KERAS_BACKEND"] = args.backend
    import keras

    x, y = load_batches(args.data, args.image_size, max(args.batch_sizes))
    device = _device_name(args.backend)
    peaks = {dtype: matmul_peak_tflops(dtype, args.matmul_size) for dtype in ("float32", "float16")}
    print(f"{device}, keras {keras.__version__} on {args.backend}, {args.image_size}x{args.image_size}, "
          f"matmul peak {peaks['float32']:.1f} TFLOP/s float32, {peaks['float16']:.1f} float16", flush=True)
    result = {"backend": keras.backend.backend(), "device": device, "image_size": args.image_size,
              "data": args.data or "synthetic", "model": vars(network_config("default")),
              "networks": {name: vars(network_config(name)) for name in args.networks},
              "matmul_peak_tflops": peaks, "results": []}
    for network, precision, batch_size in itertools.product(args.networks, args.precisions, args.batch_sizes):
        row = measure(network, batch_size, precision, args.image_size, args.steps, x, y, peaks)
        result["results"].append(row)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")  # after every row: a timeout keeps the rest
        print(f"{network:8} batch {batch_size:4}  {precision:8} {row['step_ms']:9.1f} ms/step "
              f"{row['images_per_s']:9.1f} images/s  MFU {100 * row['utilisation']:.1f}%  "
              f"(compile + warm-up {row['compile_and_warmup_s']:.0f} s)", flush=True)


def _device_name(backend: str) -> str:
    if backend == "jax":
        import jax

        return str(jax.devices()[0].device_kind)
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"


if __name__ == "__main__":
    main()
