import os

import numpy as np

from colorizer.data import resized


def test_rows_are_written_whole_when_the_system_writes_a_little_at_a_time(tmp_path, monkeypatch):
    real_pwrite = os.pwrite
    monkeypatch.setattr(os, "pwrite", lambda fd, data, offset: real_pwrite(fd, bytes(data)[:10], offset))
    path = tmp_path / "train.npy"
    resized.create_rows(path, 3, (4, 4, 3))
    row = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    resized.write_row(path, 1, row)
    np.testing.assert_array_equal(np.load(path), np.stack([np.zeros_like(row), row, np.zeros_like(row)]))
