"""Decoding whatever users point the workflow at: modes, orientation, bad files."""

import io

import numpy as np
import pytest
from conftest import colour_image, image_bytes
from PIL import Image

from colorizer.data.images import MIN_SIDE, BadImage, load_square, probe

LIMIT = 10_000_000


def test_exif_orientation_is_applied():
    pixels = np.zeros((40, 80, 3), np.uint8)
    pixels[:, :40] = (255, 0, 0)  # left half red, right half blue
    pixels[:, 40:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    data = image_bytes(pixels, "JPEG", exif=exif, quality=95)
    upright = load_square(data, 40, "stretch", LIMIT)
    # After rotating 90 degrees clockwise, red is on top and blue at the bottom.
    assert upright[2, 20, 0] > 200 and upright[2, 20, 2] < 60
    assert upright[-3, 20, 2] > 200 and upright[-3, 20, 0] < 60


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "LA", "CMYK", "1", "I;16"])
def test_modes_become_rgb(mode):
    rgb = Image.fromarray(colour_image(0, 32))
    if mode == "I;16":
        image = Image.fromarray((np.asarray(rgb.convert("L"), np.uint16) * 257))
        assert image.mode in ("I;16", "I")
    else:
        image = rgb.convert(mode)
    fmt = "TIFF" if mode == "CMYK" else "PNG"
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    out = load_square(buffer.getvalue(), 16, "crop", LIMIT)
    assert out.shape == (16, 16, 3) and out.dtype == np.uint8
    if mode == "I;16":  # scaled down from 16 bits, not clipped to white
        gray = np.asarray(rgb.convert("L").resize((16, 16)))
        assert abs(float(out.mean()) - float(gray.mean())) < 8


def test_transparent_pixels_become_white():
    rgba = np.zeros((16, 16, 4), np.uint8)  # fully transparent black
    out = load_square(image_bytes(rgba, "PNG"), 16, "crop", LIMIT)
    assert out.min() == 255


def test_animated_gif_uses_first_frame():
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 255, 0))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    out = load_square(buffer.getvalue(), 16, "crop", LIMIT)
    assert out[..., 0].mean() > 200 and out[..., 1].mean() < 50


def test_crop_keeps_aspect_and_stretch_does_not():
    pixels = np.zeros((20, 60, 3), np.uint8)
    pixels[:, :20] = 255  # white left third
    cropped = load_square(image_bytes(pixels, "PNG"), 20, "crop", LIMIT)
    stretched = load_square(image_bytes(pixels, "PNG"), 20, "stretch", LIMIT)
    assert cropped.mean() < 10  # the centre third is black
    assert 60 < stretched.mean() < 110  # a third of it white


def test_extension_does_not_matter_content_does():
    data = image_bytes(colour_image(1), "PNG")
    assert probe(data, LIMIT).format == "PNG"


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty file"),
        (b"hello, not a picture\n", "not an image"),
        (image_bytes(colour_image(0, 4), "PNG"), "too small"),
    ],
)
def test_unusable_files_say_why(data, reason):
    with pytest.raises(BadImage, match=reason):
        load_square(data, 16, "crop", LIMIT)


def test_truncated_jpeg_is_refused():
    data = image_bytes(colour_image(0, 64), "JPEG")
    with pytest.raises(BadImage, match="cannot decode"):
        load_square(data[: len(data) // 2], 16, "crop", LIMIT)


def test_pixel_limit_refuses_bombs_before_decoding():
    # A PNG of 2000 x 2000 black pixels compresses to a few kB.
    data = image_bytes(np.zeros((2000, 2000), np.uint8), "PNG")
    assert len(data) < 50_000
    with pytest.raises(BadImage, match="decompression bomb"):
        probe(data, max_pixels=1_000_000)
    assert MIN_SIDE <= 16
