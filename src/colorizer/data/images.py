"""Decoding untrusted image files into upright RGB, and fitting them to a square.

Everything here takes bytes and never trusts the file name: the format is read
from the content, the pixel count is checked against `data.max_pixels` before a
pixel is decoded (decompression bombs), and odd modes (16-bit, palette, CMYK,
alpha, animation) are converted the way a viewer would show them.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Refused above this many pixels unless told otherwise (`data.max_pixels` in the pipeline,
# `--max-pixels` in `colorize`): a decompression bomb's header promises far more.
DEFAULT_MAX_PIXELS = 64_000_000
# Below this, an image carries no spatial colour to learn from; refused rather than
# blown up into a flat square.
MIN_SIDE = 8
_RESAMPLE = Image.Resampling.BICUBIC


class BadImage(ValueError):
    """A file that cannot be used as a training image; the message says why."""


@dataclass(frozen=True)
class ImageInfo:
    format: str
    width: int
    height: int
    mode: str


def probe(data: bytes, max_pixels: int, limit: str = "data.max_pixels") -> ImageInfo:
    """Read only the header: format, size, mode. Raises BadImage with the reason."""
    image = _open(data, max_pixels, limit)
    return ImageInfo(image.format or "unknown", image.width, image.height, image.mode)


def decode_rgb(data: bytes, max_pixels: int, target: int | None = None, limit: str = "data.max_pixels") -> Image.Image:
    """Decode to an upright RGB image.

    `target` lets JPEG decoding downscale in the DCT domain ("draft" mode) to
    the smallest power-of-two reduction that still covers `target` on both sides,
    which makes large photos several times cheaper to decode.
    """
    image = _open(data, max_pixels, limit)
    if target and image.format == "JPEG":
        image.draft("RGB", (target, target))
    try:
        image.seek(0)  # animated GIF/WebP/TIFF: the first frame
        image.load()
        image = ImageOps.exif_transpose(image)
        return _to_rgb(image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise BadImage(f"cannot decode: {err}") from None


def fit_square(image: Image.Image, size: int, fit: str) -> np.ndarray:
    """Resize to (size, size): `crop` keeps the aspect ratio and trims the long side
    symmetrically, `stretch` scales each axis independently. Returns uint8 RGB."""
    if fit == "crop":
        image = ImageOps.fit(image, (size, size), method=_RESAMPLE)
    elif fit == "stretch":
        image = image.resize((size, size), _RESAMPLE)
    else:
        raise ValueError(f"data.fit must be crop or stretch, got {fit!r}")
    return np.asarray(image, dtype=np.uint8)


def load_square(data: bytes, size: int, fit: str, max_pixels: int) -> np.ndarray:
    """Bytes of any common image format -> (size, size, 3) uint8 RGB, upright."""
    return fit_square(decode_rgb(data, max_pixels, target=size), size, fit)


def difference_hash(image: Image.Image) -> int:
    """A 64-bit perceptual hash (dHash): gray, downscaled to 9x8, one bit per horizontal
    neighbour pair (is the right one brighter?). Copies that were resized or re-encoded
    differ from the original in a few bits; distinct photos in about half of them."""
    # LANCZOS rather than BOX or bilinear: on 300 real photos it gave resized + re-encoded
    # copies the fewest changed bits and distinct photos the fewest near matches. No
    # reducing_gap: 8x faster, but its box pre-shrink doubled the bits such copies lose.
    gray = np.asarray(image.convert("L").resize((9, 8), Image.Resampling.LANCZOS), np.int16)
    bits = np.packbits((gray[:, 1:] > gray[:, :-1]).ravel())
    return int.from_bytes(bits.tobytes(), "big")


def colour_spread(pixels: np.ndarray) -> float:
    """Mean over pixels of max(R, G, B) - min(R, G, B), in 0..255: about 0 for a grayscale
    photo stored as RGB (JPEG chroma rounding leaves a fraction of a level)."""
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]  # per channel in uint8: 25x faster than .max(axis=2)
    spread = np.maximum(np.maximum(r, g), b) - np.minimum(np.minimum(r, g), b)  # max >= min: no wrap-around
    return float(np.add.reduce(spread, axis=None, dtype=np.uint64)) / spread.size


def _open(data: bytes, max_pixels: int, limit: str) -> Image.Image:
    """`limit`: what the user sets `max_pixels` with, as messages name it."""
    if not data:
        raise BadImage("empty file (0 bytes)")
    # PIL's own guard (an error at twice this many pixels) backs up the check below.
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise BadImage("not an image (format not recognised)") from None
    except Image.DecompressionBombError as err:
        raise BadImage(f"refused as a decompression bomb ({limit} is {max_pixels:,}): {err}") from None
    except (OSError, ValueError, SyntaxError) as err:
        raise BadImage(f"unreadable image header: {err}") from None
    pixels = image.width * image.height
    if pixels > max_pixels:
        raise BadImage(
            f"{image.width}x{image.height} = {pixels:,} pixels exceeds {limit} ({max_pixels:,}); "
            "refused as a possible decompression bomb"
        )
    if min(image.width, image.height) < MIN_SIDE:
        raise BadImage(f"too small ({image.width}x{image.height}); both sides must be >= {MIN_SIDE} px")
    return image


def _to_rgb(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return _high_depth_to_rgb(image)
    if mode == "P" and "transparency" in image.info or mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        # Transparent pixels are shown on white, as viewers do, not on black.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")  # L, 1, P, CMYK, YCbCr, LAB, HSV


def _high_depth_to_rgb(image: Image.Image) -> Image.Image:
    """16-bit (and 32-bit int/float) gray: scale to 8 bits instead of clipping at 255."""
    values = np.asarray(image, dtype=np.float64)
    if image.mode == "F":
        scale = 255.0 if values.max(initial=0.0) <= 1.0 else 1.0
    else:
        scale = 255.0 / 65535.0
    gray = np.clip(values * scale + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(gray).convert("RGB")
