"""How a source's folders map onto the train/val/test splits, and the seeded split logic.

Sources name their splits in many ways ("Training Data", "seg_train", "valid",
"test"); they are matched by word, case-insensitively. When a source lacks a
split, it is carved out of the others per class (stratified) with a seeded,
name-sorted shuffle, so the result depends only on the file names and the seed.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import defaultdict
from dataclasses import dataclass, replace

import numpy as np

SPLITS = ("train", "val", "test")

# Share of all images per split when a source has no split at all (64:16:20, the
# design's 80:20 train/validation split of an 80:20 train/test split).
NO_SPLIT_SHARES = {"train": 0.64, "val": 0.16, "test": 0.20}
# Share of the training images carved out when only validation (or only test) is missing.
CARVE_SHARE = 0.20

_SPLIT_WORDS = {
    "train": {"train", "training", "trn", "trainset"},
    "val": {"val", "valid", "validation", "dev", "validate"},
    "test": {"test", "testing", "tst", "testset"},
}


def split_of(folder_name: str) -> str | None:
    """`'Training Data'` -> `'train'`, `'seg_test'` -> `'test'`, `'forest'` -> None."""
    words = set(re.split(r"[^a-z0-9]+", folder_name.lower())) - {""}
    matches = [split for split, names in _SPLIT_WORDS.items() if words & names]
    return matches[0] if len(matches) == 1 else None


@dataclass(frozen=True)
class Candidate:
    """One source image before it is copied into data/raw.

    `split` is None when the source has no split; `origin` says where it came
    from (a path or archive member) for manifests and error reports.
    """

    split: str | None
    label: str
    name: str
    origin: str


def assign_splits(candidates: list[Candidate], seed: int) -> list[Candidate]:
    """Give every candidate a split, carving missing ones out per class.

    - train, val and test present: kept as they are.
    - val missing: 20% of each class's training images become validation.
    - test missing: 20% of each class's training images become test.
    - no split at all: 64:16:20 per class.
    """
    present = {c.split for c in candidates}
    if present == {None}:
        return _carve(candidates, seed, source_split=None, shares=NO_SPLIT_SHARES)
    if None in present:
        loose = sorted({c.origin for c in candidates if c.split is None})[:3]
        raise ValueError(
            "the source mixes split folders with images outside them, e.g. "
            + ", ".join(loose)
            + "; put every image under a train/val/test folder or use no split folders"
        )
    if "train" not in present:
        raise ValueError(f"the source has split folders {sorted(present)} but no training split")
    result = candidates
    for missing in ("val", "test"):
        if missing not in present:
            result = _carve(
                result, seed, source_split="train", shares={"train": 1 - CARVE_SHARE, missing: CARVE_SHARE}
            )
    return result


def cap_per_class(candidates: list[Candidate], limit: int | None, seed: int) -> list[Candidate]:
    """Keep at most `limit` images per (split, class), a seeded random subset."""
    if limit is None:
        return candidates
    kept = []
    for (split, label), group in sorted(_group(candidates, by_split=True).items()):
        kept.extend(_seeded_order(group, seed, f"cap/{split}/{label}")[:limit])
    return kept


def split_counts(n: int, shares: dict[str, float]) -> dict[str, int]:
    """Largest-remainder rounding: the counts always add up to n."""
    exact = {split: n * share for split, share in shares.items()}
    counts = {split: math.floor(value) for split, value in exact.items()}
    leftover = n - sum(counts.values())
    for split in sorted(exact, key=lambda s: (counts[s] - exact[s], s))[:leftover]:
        counts[split] += 1
    return counts


def _carve(candidates, seed, source_split, shares):
    groups = _group([c for c in candidates if c.split == source_split], by_split=False)
    result = [c for c in candidates if c.split != source_split]
    for label, group in sorted(groups.items()):
        ordered = _seeded_order(group, seed, f"split/{label}")
        start = 0
        for split, count in split_counts(len(ordered), shares).items():
            result.extend(replace(c, split=split) for c in ordered[start : start + count])
            start += count
    return result


def _group(candidates, by_split: bool):
    groups = defaultdict(list)
    for c in candidates:
        groups[(c.split, c.label) if by_split else c.label].append(c)
    return groups


def _seeded_order(group: list[Candidate], seed: int, salt: str) -> list[Candidate]:
    # Sort first so the order never depends on how the file system lists folders;
    # salt with the class name (a stable hash, unlike Python's hash()).
    ordered = sorted(group, key=lambda c: (c.name, c.origin))
    salt_int = int.from_bytes(hashlib.sha256(salt.encode()).digest()[:8], "little")
    permutation = np.random.default_rng([seed, salt_int]).permutation(len(ordered))
    return [ordered[i] for i in permutation]
