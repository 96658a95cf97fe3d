import pytest
from conftest import REPO, merge, repo_params_dict

from colorizer.core.config import ParamError, load_params, params_from_dict


def test_repo_params_load_and_validate():
    params = load_params(REPO / "params.yaml")
    assert params.data.image_size == 224
    assert params.model.arch == "hybrid"
    assert params.flat()["train.epochs"] == params.train.epochs


@pytest.mark.parametrize(
    "overrides, key",
    [
        ({"lr": 0}, "lr"),
        ({"lr": -1e-3}, "lr"),
        ({"train": {"epochs": 0}}, "train.epochs"),
        ({"train": {"batch_size": -4}}, "train.batch_size"),
        ({"data": {"image_size": 100}}, "data.image_size"),
        ({"data": {"image_size": 16}}, "data.image_size"),
        ({"model": {"arch": "unet"}}, "model.arch"),
        ({"model": {"backbone": "vgg99"}}, "model.backbone"),
        ({"model": {"stem": "patchify"}}, "model.stem"),
        ({"model": {"stem": "space_to_depth", "output_stride": 2}}, "model.stem"),
        ({"model": {"convs": "grouped"}}, "model.convs"),
        ({"data": {"source": ""}}, "data.source"),
        ({"train": {"epochs": True}}, "train.epochs"),
        ({"train": {"epochs": 2.5}}, "train.epochs"),
        ({"train": {"flip": "yes"}}, "train.flip"),
        ({"data": {"max_per_class": -1}}, "data.max_per_class"),
        ({"shard": {"num_shards": 0}}, "shard.num_shards"),
        ({"metrics": {"threshold": 0}}, "metrics.threshold"),
    ],
)
def test_bad_values_name_their_key(overrides, key):
    with pytest.raises(ParamError, match=rf"\b{key}\b"):
        params_from_dict(merge(repo_params_dict(), overrides))


def test_unknown_and_missing_keys_are_errors():
    with pytest.raises(ParamError, match=r"unknown key train\.epoch\b"):
        params_from_dict(merge(repo_params_dict(), {"train": {"epoch": 3}}))
    raw = repo_params_dict()
    del raw["model"]["width"]
    with pytest.raises(ParamError, match=r"missing key model\.width"):
        params_from_dict(raw)
    with pytest.raises(ParamError, match=r"unknown key colour"):
        params_from_dict(merge(repo_params_dict(), {"colour": 1}))


def test_lr_written_by_dvc_as_string_is_a_float():
    # PyYAML reads `lr: 1e-4` (no dot) as a string; `dvc exp run -S lr=1e-4` writes just that.
    params = params_from_dict(merge(repo_params_dict(), {"lr": "1e-4"}))
    assert params.lr == pytest.approx(1e-4)
    with pytest.raises(ParamError, match=r"\blr\b"):
        params_from_dict(merge(repo_params_dict(), {"lr": "fast"}))


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ParamError, match="not found"):
        load_params(tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text("seed: [1,\n")
    with pytest.raises(ParamError, match="not valid YAML"):
        load_params(tmp_path / "params.yaml")
