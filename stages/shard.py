"""DVC stage `shard`: resized RGB -> quantised CIE LAB TFRecord shards per split."""

import sys
from pathlib import Path

from colorizer.core.errors import run_stage


def main() -> None:
    # Imported here, inside run_stage: a Ctrl-C during the imports (TensorFlow, pools: the first
    # second) is then its one line, not a traceback.
    from colorizer.core.config import load_params
    from colorizer.prepare.shard import shard

    params = load_params()
    meta = shard(
        resized=Path(params.paths.resized), out=Path(params.paths.shards),
        num_shards=params.shard.num_shards, seed=params.data.seed,
    )
    counts = {split: info["examples"] for split, info in meta["splits"].items()}
    print(f"shard: {counts} examples at {meta['image_size']}x{meta['image_size']}")


if __name__ == "__main__":
    sys.exit(run_stage(main))
