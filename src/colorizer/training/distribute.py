"""Devices for `train`: one CPU/GPU, all GPUs of a machine, or several machines.

`train.strategy`:
- `auto`: MirroredStrategy when more than one GPU is visible, else the default (one device).
- `mirrored`: MirroredStrategy over all visible GPUs, or over all logical CPU devices
  when there is no GPU (`COLORIZER_LOGICAL_CPUS=N` splits the CPU into N, for trying
  multi-device training on a laptop).
- `multi_worker`: MultiWorkerMirroredStrategy configured by the standard `TF_CONFIG`
  (one process per machine); each worker reads its own subset of shard files.

The global batch is `train.batch_size` x the number of replicas (each replica gets
`train.batch_size` images per step); the learning rate is not rescaled.

`train.mixed_precision: auto` uses float16 compute (with float32 outputs, loss and
variables) when a GPU is present, float32 otherwise; `on` and `off` force it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import keras
import tensorflow as tf

LOGICAL_CPUS_ENV = "COLORIZER_LOGICAL_CPUS"


@dataclass
class Devices:
    strategy: tf.distribute.Strategy
    is_chief: bool  # writes the model, metrics, checkpoints and the MLflow run
    workers: int  # machines (processes) taking part

    @property
    def replicas(self) -> int:
        return self.strategy.num_replicas_in_sync


def setup(strategy: str, mixed_precision: str) -> Devices:
    """Call before building the model: picks the strategy and the dtype policy."""
    _split_cpu()
    gpus = tf.config.list_physical_devices("GPU")
    if mixed_precision == "on" or (mixed_precision == "auto" and gpus):
        keras.mixed_precision.set_global_policy("mixed_float16")
    if strategy == "multi_worker":
        return _multi_worker()
    if strategy == "mirrored" or (strategy == "auto" and len(gpus) > 1):
        devices = None if gpus else [d.name for d in tf.config.list_logical_devices("CPU")]
        return Devices(tf.distribute.MirroredStrategy(devices=devices), True, 1)
    return Devices(tf.distribute.get_strategy(), True, 1)


def _multi_worker() -> Devices:
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    if not config.get("cluster"):
        raise ValueError(
            "train.strategy: multi_worker needs TF_CONFIG describing the cluster, e.g. "
            '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'
        )
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    task = config.get("task", {})
    workers = sum(len(config["cluster"].get(kind, [])) for kind in ("chief", "worker"))
    # The chief is the "chief" task if there is one, else worker 0 (TensorFlow's convention).
    is_chief = task.get("type") == "chief" or ("chief" not in config["cluster"] and int(task.get("index", 0)) == 0)
    return Devices(strategy, is_chief, workers)


def _split_cpu() -> None:
    count = int(os.environ.get(LOGICAL_CPUS_ENV, "0") or 0)
    if count > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
