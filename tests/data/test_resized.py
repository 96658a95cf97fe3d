import os

import numpy as np
import pytest

from colorizer.data import resized


def test_rows_are_written_whole_when_the_system_writes_a_little_at_a_time(tmp_path, monkeypatch):
    real_pwrite = os.pwrite
    monkeypatch.setattr(os, "pwrite", lambda fd, data, offset: real_pwrite(fd, bytes(data)[:10], offset))
    path = tmp_path / "train.npy"
    resized.create_rows(path, 3, (4, 4, 3))
    row = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    resized.write_row(path, 1, row)
    np.testing.assert_array_equal(np.load(path), np.stack([np.zeros_like(row), row, np.zeros_like(row)]))


@pytest.mark.parametrize("name, damage", [
    ("train.npy", lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])),
    ("train.csv", lambda p: p.write_text(p.read_text().splitlines()[0] + "\ntrain/coast/cut-off.jpg\n")),
    ("val.npy", lambda p: p.unlink()),
])
def test_a_damaged_resized_file_is_one_line_naming_it(tiny_data, tmp_path, name, damage):
    import shutil

    from colorizer.core.errors import UserError
    from colorizer.prepare.shard import shard

    resized = tmp_path / "resized"
    shutil.copytree(tiny_data.paths.resized, resized)
    damage(resized / name)
    with pytest.raises(UserError) as raised:
        shard(resized=resized, out=tmp_path / "shards", num_shards=2, seed=42)
    message = str(raised.value)
    assert f"{resized / name} is damaged" in message and "dvc checkout resize" in message and "\n" not in message
