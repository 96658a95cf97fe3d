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
from pathlib import Path, PurePath

from colorizer.core.errors import UserError

PARAMS_FILE = "params.yaml"


# src/colorizer/core/config.py -> the repository (for an installed package: its site-packages).
_REPO_ROOT = Path(__file__).resolve().parents[3]


class ParamError(UserError, ValueError):
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
    model_card: str

    def validate(self) -> None:
        for f in dataclasses.fields(self):
            key, value = f"paths.{f.name}", getattr(self, f.name)
            if f.name == "checkpoints":
                _require_checkpoint_path(value, key)
            else:
                _require_inside_repo(value, key)
        # Keras 3 saves and safely loads only its own zip format, and MLflow's model reads it.
        _require(PurePath(self.model).suffix == ".keras", "paths.model", f"must end with .keras, got {self.model!r}")


@dataclass(frozen=True)
class DataParams:
    seed: int
    source: str
    image_size: int
    max_per_class: int | None
    synthetic_per_class: int
    synthetic_size: int
    fit: str
    max_pixels: int
    max_archive_gib: float
    max_file_mib: int
    near_duplicate_bits: int
    min_colour_spread: float

    def validate(self) -> None:
        _require_seed(self.seed, "data.seed")
        _require(bool(self.source.strip()), "data.source", "must not be empty")
        _require_range(self.image_size, "data.image_size", 32, 1024)
        # The encoder halves the resolution three times; the decoder must land on the input size.
        _require(
            self.image_size % 8 == 0,
            "data.image_size",
            f"must be a multiple of 8 (the encoder downsamples 3 times), got {self.image_size}",
        )
        if self.max_per_class is not None:
            _require_range(self.max_per_class, "data.max_per_class", 1, 10**7, "null or ")
        # At least 5 per class, so the 64:16:20 split leaves every split an image.
        _require_range(self.synthetic_per_class, "data.synthetic_per_class", 5, 10**6)
        _require_range(self.synthetic_size, "data.synthetic_size", 32, 4096)
        _require_choice(self.fit, "data.fit", ("crop", "stretch"))
        # 64 = 8x8, the smallest image decoded at all (data/images.py MIN_SIDE); 2**31 pixels
        # is past what PIL decodes into one array.
        _require_range(self.max_pixels, "data.max_pixels", 64, 2**31 - 1)
        _require_range(self.max_archive_gib, "data.max_archive_gib", 0.001, 10_000)
        # Bytes read per source file, held in memory by each download worker.
        _require_range(self.max_file_mib, "data.max_file_mib", 1, 4096)
        # Of 64 hash bits, unrelated photos differ in about 32: beyond 16 "near" means nothing.
        _require_range(self.near_duplicate_bits, "data.near_duplicate_bits", 0, 16)
        _require_range(self.min_colour_spread, "data.min_colour_spread", 0, 255)


@dataclass(frozen=True)
class ShardParams:
    num_shards: int

    def validate(self) -> None:
        _require_range(self.num_shards, "shard.num_shards", 1, 4096)


@dataclass(frozen=True)
class ModelParams:
    arch: str
    width: int
    skips: bool
    norm: str
    backbone: str
    backbone_role: str
    backbone_size: int
    backbone_tune: int
    backbone_vector: str
    backbone_dropout: float
    temperature: float
    prior_correction: float | str  # a strength, or "auto": chosen on validation after training
    output_stride: int
    decoder: str

    @property
    def initial_prior_correction(self) -> float:
        """The strength a model is built with: `auto` starts at 0 and is chosen after training."""
        return 0.0 if self.prior_correction == "auto" else float(self.prior_correction)

    def validate(self) -> None:
        _require_choice(self.decoder, "model.decoder", ("concat", "lowres"))
        _require(self.prior_correction == "auto" or (not isinstance(self.prior_correction, str)
                 and 0 <= self.prior_correction <= 1), "model.prior_correction",
                 f"must be auto or in [0, 1], got {self.prior_correction!r}")
        _require(self.output_stride in (1, 2, 4, 8), "model.output_stride", f"must be 1, 2, 4 or 8, got {self.output_stride}")
        _require(0 < self.temperature <= 1, "model.temperature", f"must be in (0, 1], got {self.temperature}")
        _require_choice(self.arch, "model.arch", ("hybrid", "autoencoder"))
        _require_choice(self.norm, "model.norm", ("batch", "group", "none"))
        # Filters double per encoder level: 512 already means 4096 at the bottleneck.
        _require_range(self.width, "model.width", 4, 512)
        _require_choice(self.backbone, "model.backbone", BACKBONES)
        _require(
            self.backbone == "none" or self.arch == "hybrid",
            "model.backbone",
            "a pretrained backbone feeds the hybrid's global branch; use model.arch: hybrid",
        )
        _require_choice(self.backbone_role, "model.backbone_role", ("global", "encoder"))
        _require(self.backbone_size == 0 or 32 <= self.backbone_size <= 1024, "model.backbone_size",
                 f"must be 0 (the training size) or in [32, 1024], got {self.backbone_size}")
        _require_range(self.backbone_tune, "model.backbone_tune", 0, BACKBONE_BLOCKS)
        _require_choice(self.backbone_vector, "model.backbone_vector", ("pooled", "classes"))
        _require(0 <= self.backbone_dropout < 1, "model.backbone_dropout",
                 f"must be in [0, 1), got {self.backbone_dropout}")


# Largest batch (train and evaluate): beyond it a batch of 224x224 examples no longer fits
# any single accelerator, and a typo like 1e7 should fail here, not in the first step.
MAX_BATCH = 4096

# The hybrid's global CNN: trained from scratch, or ImageNet-pretrained from an installed package.
BACKBONES = ("none", "efficientnet_lite0")
BACKBONE_BLOCKS = 16  # EfficientNet-Lite0's MBConv blocks (model/efficientnet_lite.py)


@dataclass(frozen=True)
class TrainParams:
    seed: int
    epochs: int
    batch_size: int
    shuffle_buffer: int
    flip: bool
    crop: float
    sample_every: int
    resume: bool
    loss: str
    rebalance: float
    scene_weight: float
    backbone_lr_scale: float
    strategy: str
    mixed_precision: str
    jit_compile: bool
    schedule: str

    def validate(self) -> None:
        _require_seed(self.seed, "train.seed")
        _require_choice(self.schedule, "train.schedule", ("constant", "cosine"))
        _require_choice(self.strategy, "train.strategy", ("auto", "mirrored", "multi_worker"))
        _require_choice(self.mixed_precision, "train.mixed_precision", ("auto", "on", "off"))
        _require_choice(self.loss, "train.loss", ("mse", "l1", "classification"))
        _require(0 < self.rebalance <= 1, "train.rebalance", f"must be in (0, 1], got {self.rebalance}")
        _require(0 <= self.scene_weight <= 10, "train.scene_weight", f"must be in [0, 10], got {self.scene_weight}")
        _require(0 < self.backbone_lr_scale <= 1, "train.backbone_lr_scale",
                 f"must be in (0, 1], got {self.backbone_lr_scale}")
        _require_range(self.epochs, "train.epochs", 1, 10_000)
        _require_range(self.batch_size, "train.batch_size", 1, MAX_BATCH)
        # Examples held in memory for shuffling: 10**6 at 224x224 is already ~150 GB.
        _require_range(self.shuffle_buffer, "train.shuffle_buffer", 1, 10**6)
        _require_range(self.sample_every, "train.sample_every", 1, 10_000)
        _require(0.25 <= self.crop <= 1, "train.crop", f"must be in [0.25, 1] (of the area), got {self.crop}")


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
        _require_range(self.batch_size, "evaluate.batch_size", 1, MAX_BATCH)


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
        _require(bool(self.store.strip()) and self.store == self.store.strip() and ":" not in self.store
                 and not self.store.endswith(("/", "\\")), "mlflow.store",
                 f"must be a SQLite file's path, relative to the repository or absolute (a URI goes in "
                 f"MLFLOW_TRACKING_URI), got {self.store!r}")
        _require(bool(self.artifacts.strip()), "mlflow.artifacts", "must not be empty")


@dataclass(frozen=True)
class Params:
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
        _require(0 < self.lr <= 1, "lr", f"must be in (0, 1], got {self.lr}")
        for f in dataclasses.fields(self):
            section = getattr(self, f.name)
            if hasattr(section, "validate"):
                section.validate()
        model = self.model
        _require(model.backbone == "none" or model.backbone_role != "encoder" or self.data.image_size % 32 == 0,
                 "data.image_size", f"must be a multiple of 32 with model.backbone_role encoder (its bottleneck is "
                 f"at 1/32), got {self.data.image_size}")

    def flat(self) -> dict[str, object]:
        """Dotted-key view (`train.epochs`) for logging every param to MLflow."""
        return _flatten(dataclasses.asdict(self))


def load_params(path: str | Path = PARAMS_FILE) -> Params:
    import yaml  # here, not at the top: the model code imports this module on machines without PyYAML

    path = Path(path)
    try:
        raw = yaml.load(path.read_text(), Loader=_unique_keys_loader(yaml)) or {}
    except FileNotFoundError:
        raise ParamError(f"{path}: not found (run from the repository root)") from None
    except yaml.YAMLError as err:
        raise ParamError(f"{path}: not valid YAML{_yaml_where(err)}") from None
    return params_from_dict(raw, source=str(path))


def _unique_keys_loader(yaml):
    """PyYAML's safe loader, refusing a key given twice in one mapping: PyYAML keeps the last
    silently, while DVC refuses the file, so the stages and `dvc repro` would disagree."""

    class UniqueKeys(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if key in seen:
                    raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
                seen.add(key)
            return super().construct_mapping(node, deep)

    return UniqueKeys


def _yaml_where(err) -> str:
    """PyYAML's message spans several lines (context, problem, a snippet of the file): its line,
    column and problem fit in one."""
    mark, problem = getattr(err, "problem_mark", None), getattr(err, "problem", None)
    if mark is None or not problem:
        return f": {str(err).splitlines()[0] if str(err) else type(err).__name__}"
    return f" at line {mark.line + 1}, column {mark.column + 1}: {problem}"


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


def _require_range(value, key: str, low, high, also: str = "") -> None:
    _require(low <= value <= high, key, f"must be {also}in [{low}, {high}], got {value}")


def _require_seed(value: int, key: str) -> None:
    # NumPy's and TensorFlow's seeds are unsigned 32-bit.
    _require_range(value, key, 0, 2**32 - 1)


def _require_inside_repo(value: str, key: str) -> None:
    """Stage outputs live in the repository (DVC tracks them there): relative, no '..', not the root."""
    path = PurePath(value.strip())
    _require(not path.is_absolute() and not value.strip().startswith("~"), key,
             f"must be a path relative to the repository root, got {value!r}")
    _require(".." not in path.parts, key, f"must stay inside the repository (no '..'), got {value!r}")
    _require(path.parts not in ((), (".",)), key, f"must name a file or folder inside the repository, got {value!r}")


def _require_checkpoint_path(value: str, key: str) -> None:
    """Checkpoints may live outside the repo (shared storage for multi-worker training), but
    `train` deletes that folder when a run completes: never '/', the home folder, the
    repository, the working directory or any folder holding one of them."""
    path = Path(value.strip()).expanduser()
    if not path.is_absolute():
        _require_inside_repo(value, key)
        return
    resolved = path.resolve()
    protected = (Path.home().resolve(), Path.cwd().resolve(), _REPO_ROOT)
    _require(not any(resolved == p or resolved in p.parents for p in protected), key,
             f"must be a dedicated folder (train deletes it after a run), not {value!r}, which is or holds "
             "the home folder, the repository or the working directory")


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
