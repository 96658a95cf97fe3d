import numpy as np
import tensorflow as tf

from colorizer.data import tfrecords
from colorizer.data.lab import rgb_to_lab


def dequantise(lightness: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """The inverse of `quantise` in NumPy (the pipeline does it in `tfrecords.parse`)."""
    lab = np.empty((*lightness.shape, 3), np.float32)
    lab[..., 0] = lightness.astype(np.float32) * tfrecords.L_SCALE
    lab[..., 1:] = ab.astype(np.float32) - tfrecords.AB_OFFSET
    return lab


def sample_lab(seed=0, shape=(6, 5)):
    rgb = np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)
    return rgb_to_lab(rgb)


def test_quantisation_error_is_bounded():
    rgb = np.stack(np.meshgrid(*[np.arange(0, 256, 5)] * 3, indexing="ij"), -1).astype(np.uint8)
    lab = rgb_to_lab(rgb)
    restored = dequantise(*tfrecords.quantise(lab))
    assert np.max(np.abs(restored[..., 0] - lab[..., 0])) <= tfrecords.L_SCALE / 2 + 1e-4
    assert np.max(np.abs(restored[..., 1:] - lab[..., 1:])) <= 0.5 + 1e-4
    # The whole sRGB gamut fits: nothing was clipped.
    assert lab[..., 1:].min() > -tfrecords.AB_OFFSET and lab[..., 1:].max() < 255 - tfrecords.AB_OFFSET


def test_write_parse_round_trip(tmp_path):
    lab = sample_lab()
    lightness, ab = tfrecords.quantise(lab)
    path = tmp_path / "x.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        writer.write(tfrecords.serialise(lightness, ab, label=3, file="train/forest/ä b.jpg"))
    parsed = next(iter(tf.data.TFRecordDataset([str(path)]).map(tfrecords.parse)))
    expected = dequantise(lightness, ab)
    np.testing.assert_allclose(parsed["L"].numpy()[..., 0], expected[..., 0], atol=1e-5)
    np.testing.assert_allclose(parsed["ab"].numpy(), expected[..., 1:], atol=1e-5)
    assert parsed["L"].shape == (6, 5, 1) and parsed["ab"].shape == (6, 5, 2)
    assert int(parsed["label"]) == 3
    assert parsed["file"].numpy().decode() == "train/forest/ä b.jpg"


def test_hand_encoding_is_tensorflows_deterministic_serialisation():
    lightness, ab = tfrecords.quantise(sample_lab(2, shape=(300, 200)))  # lengths needing multi-byte varints
    ours = tfrecords.serialise(lightness, ab, 300, "train/Glacier/ïce 1.jpg")
    features = {
        "L": tf.train.Feature(bytes_list=tf.train.BytesList(value=[lightness.tobytes()])),
        "ab": tf.train.Feature(bytes_list=tf.train.BytesList(value=[ab.tobytes()])),
        "height": tf.train.Feature(int64_list=tf.train.Int64List(value=[300])),
        "width": tf.train.Feature(int64_list=tf.train.Int64List(value=[200])),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[300])),
        "file": tf.train.Feature(bytes_list=tf.train.BytesList(value=["train/Glacier/ïce 1.jpg".encode()])),
    }
    theirs = tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString(deterministic=True)
    assert ours == theirs


def test_serialisation_is_deterministic():
    lightness, ab = tfrecords.quantise(sample_lab(1))
    first = tfrecords.serialise(lightness, ab, 1, "a.jpg")
    assert first == tfrecords.serialise(lightness.copy(), ab.copy(), 1, "a.jpg")


def test_colour_table_is_the_direct_conversion(tmp_path, monkeypatch):
    from colorizer.prepare import lut

    table = lut.load_table()
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (4, 64, 64, 3), dtype=np.uint8)
    pixels[0] = np.clip(np.cumsum(rng.integers(-2, 3, (64, 64, 3)), axis=1) + 128, 0, 255)  # smooth, photo-like
    lightness, ab = lut.quantised_lab(pixels, table)
    expected_l, expected_ab = tfrecords.quantise(rgb_to_lab(pixels))
    np.testing.assert_array_equal(lightness, expected_l)
    np.testing.assert_array_equal(ab, expected_ab)
    assert lut.table_path().name.startswith("srgb-lab-u8-")


def test_ab_histogram_counts_each_pair_at_its_a_b_bytes():
    from colorizer.prepare import lut

    ab = np.random.default_rng(4).integers(0, 256, (3, 17, 11, 2), dtype=np.uint8)
    ab[0, :5] = (200, 7)  # a pair whose a and b differ, many times: the axes must not be swapped
    expected = np.zeros((256, 256), np.int64)
    np.add.at(expected, (ab[..., 0].ravel(), ab[..., 1].ravel()), 1)
    np.testing.assert_array_equal(lut.ab_histogram(ab), expected)
    np.testing.assert_array_equal(lut.ab_histogram(ab[:, ::2]), lut.ab_histogram(np.ascontiguousarray(ab[:, ::2])))


def test_record_writer_writes_what_tensorflows_writer_writes(tmp_path):
    records = [b"", b"x", tfrecords.serialise(*tfrecords.quantise(sample_lab(5, shape=(40, 30))), 2, "a/b.jpg")]
    with tf.io.TFRecordWriter(str(tmp_path / "tf.tfrecord")) as writer:
        for record in records:
            writer.write(record)
    with tfrecords.RecordWriter(tmp_path / "ours.tfrecord") as writer:
        for record in records:
            writer.write(record)
    assert (tmp_path / "ours.tfrecord").read_bytes() == (tmp_path / "tf.tfrecord").read_bytes()
    read = [r.numpy() for r in tf.data.TFRecordDataset([str(tmp_path / "ours.tfrecord")])]
    assert read == records

