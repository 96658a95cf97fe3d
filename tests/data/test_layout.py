from collections import Counter

import pytest

from colorizer.data.layout import (
    Candidate,
    assign_splits,
    cap_per_class,
    split_counts,
    split_of,
)


@pytest.mark.parametrize(
    "name, split",
    [
        ("Training Data", "train"), ("train", "train"), ("seg_train", "train"), ("TRAINING", "train"),
        ("Validation Data", "val"), ("valid", "val"), ("val", "val"), ("dev", "val"),
        ("Testing Data", "test"), ("test", "test"), ("seg_test", "test"),
        ("forest", None), ("Coast", None), ("trainers", None), ("contest", None),
    ],
)
def test_split_names(name, split):
    assert split_of(name) == split


def candidates(split, label, n):
    return [Candidate(split, label, f"{label}_{i:03d}.jpg", f"{split}/{label}/{i}") for i in range(n)]


def counts(result):
    return Counter((c.split, c.label) for c in result)


def test_all_splits_present_are_kept():
    given = candidates("train", "a", 5) + candidates("val", "a", 2) + candidates("test", "a", 3)
    assert counts(assign_splits(given, seed=1)) == counts(given)


def test_validation_is_carved_80_20_from_train_per_class():
    given = candidates("train", "a", 50) + candidates("train", "b", 10) + candidates("test", "a", 7)
    result = counts(assign_splits(given, seed=1))
    assert result[("train", "a")] == 40 and result[("val", "a")] == 10
    assert result[("train", "b")] == 8 and result[("val", "b")] == 2
    assert result[("test", "a")] == 7


def test_no_splits_gives_64_16_20():
    result = counts(assign_splits(candidates(None, "a", 100) + candidates(None, "b", 25), seed=3))
    assert [result[(s, "a")] for s in ("train", "val", "test")] == [64, 16, 20]
    assert sum(result[(s, "b")] for s in ("train", "val", "test")) == 25
    assert result[("test", "b")] == 5


def test_carving_is_seeded_and_independent_of_listing_order():
    given = candidates(None, "a", 30)
    first = {c.name: c.split for c in assign_splits(given, seed=7)}
    again = {c.name: c.split for c in assign_splits(list(reversed(given)), seed=7)}
    other = {c.name: c.split for c in assign_splits(given, seed=8)}
    assert first == again
    assert first != other


def test_mixed_and_trainless_layouts_are_refused():
    with pytest.raises(ValueError, match="outside them"):
        assign_splits(candidates("train", "a", 3) + candidates(None, "a", 1), seed=0)
    with pytest.raises(ValueError, match="no training split"):
        assign_splits(candidates("test", "a", 3), seed=0)


def test_cap_per_class_and_split():
    given = candidates("train", "a", 20) + candidates("test", "a", 3)
    result = counts(cap_per_class(given, 5, seed=0))
    assert result == {("train", "a"): 5, ("test", "a"): 3}
    assert cap_per_class(given, None, seed=0) == given


@pytest.mark.parametrize("n", [0, 1, 2, 3, 7, 99, 1000])
def test_split_counts_add_up(n):
    result = split_counts(n, {"train": 0.64, "val": 0.16, "test": 0.2})
    assert sum(result.values()) == n
