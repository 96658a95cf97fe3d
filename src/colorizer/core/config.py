"""params.yaml -> validated, frozen dataclasses.

params.yaml is the only place values live: the dataclasses below declare the
schema (names, types, ranges) and carry no defaults. Every stage loads the whole
file through `load_params`, so a typo or a bad value anywhere fails before any
work, with the offending key named (`params.yaml: train.epochs must be >= 1,
got -1`). Unknown and missing keys are errors too: a misspelt `train.epoch`
would otherwise be silently ignored.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from pathlib import Path

PARAMS_FILE = "params.yaml"


class ParamError(ValueError):
    """A parameter in params.yaml is missing, unknown or out of range."""


@dataclass(frozen=True)
class PathParams:
    """Where each stage writes; dvc.yaml passes these to the stage scripts."""

    raw: str
    resized: str
    shards: str
    model: str
    run_info: str
    checkpoints: str
    train_metrics: str
    history: str
    eval_metrics: str
    data_report: str
    samples: str


@dataclass(frozen=True)
class DataParams:
    source: str
    image_size: int
    max_per_class: int | None
    synthetic_per_class: int
    synthetic_size: int
    fit: str
    max_pixels: int
    max_archive_gib: float

    def validate(self) -> None:
        _require(bool(self.source.strip()), "data.source", "must not be empty")
        _require(self.image_size >= 32, "data.image_size", f"must be >= 32, got {self.image_size}")
        # The encoder halves the resolution three times; the decoder must land on the input size.
        _require(
            self.image_size % 8 == 0,
            "data.image_size",
            f"must be a multiple of 8 (the encoder downsamples 3 times), got {self.image_size}",
        )
        _require(
            self.max_per_class is None or self.max_per_class > 0,
            "data.max_per_class",
            f"must be null or > 0, got {self.max_per_class}",
        )
        _require(self.synthetic_per_class >= 5, "data.synthetic_per_class", "must be >= 5 (64:16:20 split)")
        _require(self.synthetic_size >= 32, "data.synthetic_size", f"must be >= 32, got {self.synthetic_size}")
        _require_choice(self.fit, "data.fit", ("crop", "stretch"))
        _require(self.max_pixels > 0, "data.max_pixels", "must be > 0")
        _require(self.max_archive_gib > 0, "data.max_archive_gib", "must be > 0")


@dataclass(frozen=True)
class ShardParams:
    num_shards: int

    def validate(self) -> None:
        _require(self.num_shards >= 1, "shard.num_shards", f"must be >= 1, got {self.num_shards}")


@dataclass(frozen=True)
class ModelParams:
    arch: str
    width: int
    skips: bool
    norm: str
    backbone: str
    temperature: float
    prior_correction: float
    output_stride: int
    # Defaults = the original network, for code that builds a ModelParams by hand; params.yaml sets both.
    stem: str = "conv"
    convs: str = "standard"

    def validate(self) -> None:
        _require_choice(self.stem, "model.stem", ("conv", "strided", "space_to_depth"))
        _require_choice(self.convs, "model.convs", ("standard", "separable"))
        _require(self.stem == "conv" or self.output_stride >= 4, "model.stem",
                 "space_to_depth starts at 1/4 resolution: needs model.output_stride >= 4")
        _require(0 <= self.prior_correction <= 1, "model.prior_correction", "must be in [0, 1]")
        _require(self.output_stride in (1, 2, 4, 8), "model.output_stride", f"must be 1, 2, 4 or 8, got {self.output_stride}")
        _require(0 < self.temperature <= 1, "model.temperature", f"must be in (0, 1], got {self.temperature}")
        _require_choice(self.arch, "model.arch", ("hybrid", "autoencoder"))
        _require_choice(self.norm, "model.norm", ("batch", "group", "none"))
        _require(self.width >= 4, "model.width", f"must be >= 4, got {self.width}")
        _require_choice(self.backbone, "model.backbone", BACKBONES)
        _require(
            self.backbone == "none" or self.arch == "hybrid",
            "model.backbone",
            "a pretrained backbone feeds the hybrid's global branch; use model.arch: hybrid",
        )


# Keras Applications usable as the hybrid's global branch (ImageNet weights, needs internet once).
BACKBONES = ("none", "mobilenet_v2", "efficientnet_b0", "resnet50")


@dataclass(frozen=True)
class TrainParams:
    epochs: int
    batch_size: int
    shuffle_buffer: int
    flip: bool
    sample_every: int
    resume: bool
    loss: str
    rebalance: float
    strategy: str
    mixed_precision: str
    jit_compile: bool
    schedule: str

    def validate(self) -> None:
        _require_choice(self.schedule, "train.schedule", ("constant", "cosine"))
        _require_choice(self.strategy, "train.strategy", ("auto", "mirrored", "multi_worker"))
        _require_choice(self.mixed_precision, "train.mixed_precision", ("auto", "on", "off"))
        _require_choice(self.loss, "train.loss", ("mse", "l1", "classification"))
        _require(0 < self.rebalance <= 1, "train.rebalance", f"must be in (0, 1], got {self.rebalance}")
        _require(self.epochs >= 1, "train.epochs", f"must be >= 1, got {self.epochs}")
        _require(self.batch_size >= 1, "train.batch_size", f"must be >= 1, got {self.batch_size}")
        _require(self.shuffle_buffer >= 1, "train.shuffle_buffer", "must be >= 1")
        _require(self.sample_every >= 1, "train.sample_every", "must be >= 1")


@dataclass(frozen=True)
class MetricParams:
    threshold: float
    samples: int

    def validate(self) -> None:
        _require(0 < self.threshold <= 150, "metrics.threshold", "must be in (0, 150] ab units")
        _require(1 <= self.samples <= 64, "metrics.samples", "must be in [1, 64]")


@dataclass(frozen=True)
class EvaluateParams:
    batch_size: int

    def validate(self) -> None:
        _require(self.batch_size >= 1, "evaluate.batch_size", "must be >= 1")


@dataclass(frozen=True)
class MlflowParams:
    experiment: str
    store: str
    artifacts: str
    register: bool
    model_name: str

    def validate(self) -> None:
        _require(bool(self.experiment.strip()), "mlflow.experiment", "must not be empty")
        _require(bool(self.model_name.strip()), "mlflow.model_name", "must not be empty")


@dataclass(frozen=True)
class Params:
    seed: int
    lr: float
    paths: PathParams
    data: DataParams
    shard: ShardParams
    model: ModelParams
    train: TrainParams
    metrics: MetricParams
    evaluate: EvaluateParams
    mlflow: MlflowParams

    def validate(self) -> None:
        _require(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        _require(self.seed >= 0, "seed", f"must be >= 0, got {self.seed}")
        for f in dataclasses.fields(self):
            section = getattr(self, f.name)
            if hasattr(section, "validate"):
                section.validate()

    def flat(self) -> dict[str, object]:
        """Dotted-key view (`train.epochs`) for logging every param to MLflow."""
        return _flatten(dataclasses.asdict(self))


def load_params(path: str | Path = PARAMS_FILE) -> Params:
    import yaml  # here, not at the top: the model code imports this module on machines without PyYAML

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ParamError(f"{path}: not found (run from the repository root)") from None
    except yaml.YAMLError as err:
        raise ParamError(f"{path}: not valid YAML: {err}") from None
    return params_from_dict(raw, source=str(path))


def params_from_dict(raw: dict, source: str = PARAMS_FILE) -> Params:
    try:
        params = _build(Params, raw, prefix="")
        params.validate()
    except ParamError as err:
        raise ParamError(f"{source}: {err}") from None
    return params


def _build(cls, raw, prefix: str):
    if not isinstance(raw, dict):
        raise ParamError(f"{prefix.rstrip('.') or 'top level'} must be a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ParamError(f"unknown key {prefix}{unknown[0]} (known: {', '.join(sorted(names))})")
    missing = sorted(names - set(raw))
    if missing:
        raise ParamError(f"missing key {prefix}{missing[0]}")
    values = {}
    for name, value in raw.items():
        key, hint = prefix + name, hints[name]
        if dataclasses.is_dataclass(hint):
            values[name] = _build(hint, value, prefix=key + ".")
        else:
            values[name] = _coerce(value, hint, key)
    return cls(**values)


def _coerce(value, hint, key: str):
    """Check a YAML scalar against a field's annotation (int, float, bool, str, X | None)."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None:
        if type(None) in options:
            return None
        raise ParamError(f"{key} must not be null")
    for option in options:
        # bool is an int in Python, but `epochs: true` is a typo, not 1.
        if option is bool and isinstance(value, bool):
            return value
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if option is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if option is float and isinstance(value, str):
            try:  # YAML 1.1 reads `1e-4` as a string; dvc exp run -S writes it that way.
                return float(value)
            except ValueError:
                pass
        if option is str and isinstance(value, str):
            return value
    expected = " or ".join(o.__name__ for o in options if o is not type(None))
    raise ParamError(f"{key} must be {expected}, got {value!r}")


def _require(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ParamError(f"{key} {message}")


def _require_choice(value: str, key: str, choices: tuple[str, ...]) -> None:
    _require(value in choices, key, f"must be one of {', '.join(choices)}; got {value!r}")


def _flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat
