"""Procedurally generated landscape photos-in-miniature, so the workflow runs offline.

Five classes mirror the Kaggle dataset (coast, desert, forest, glacier, mountains).
Each image is a composition of the same few pieces real landscapes are made of:
a sky gradient (day, golden hour or overcast) with sun glow and fractal clouds,
fractal ridge lines for terrain, aerial-perspective haze towards the horizon,
textured ground, water that mirrors the sky, and snow above a snow line.
The colour statistics therefore differ by class the way real ones do: blue skies,
yellow sand, green forest, white/cyan ice.

Everything is a pure function of (seed, class, index): the same params give the
same pixels on every machine, and images can be generated in parallel.
"""

from __future__ import annotations

import hashlib
import io

import numpy as np
from PIL import Image

CLASSES = ("coast", "desert", "forest", "glacier", "mountains")
JPEG_QUALITY = 92  # real photo datasets are JPEGs; keep their kind of artefacts

# Palettes in linear-ish sRGB [0, 1]: (zenith, horizon) per sky mood.
_SKIES = {
    "day": ((0.16, 0.38, 0.78), (0.66, 0.80, 0.94)),
    "golden": ((0.22, 0.33, 0.62), (0.98, 0.72, 0.45)),
    "overcast": ((0.55, 0.58, 0.63), (0.78, 0.80, 0.82)),
}


def generate(seed: int, label: str, index: int, size: int) -> np.ndarray:
    """One synthetic landscape as an RGB float32 array in [0, 1], shape (size, size, 3)."""
    if label not in CLASSES:
        raise ValueError(f"unknown synthetic class {label!r}; known: {', '.join(CLASSES)}")
    digest = hashlib.sha256(f"{seed}/{label}/{index}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    image = _PAINTERS[label](rng, size)
    grain = rng.normal(0.0, 0.012, image.shape).astype(np.float32)  # sensor noise
    return np.clip(image + grain, 0.0, 1.0)


def generate_jpeg(seed: int, label: str, index: int, size: int) -> bytes:
    pixels = (generate(seed, label, index, size) * 255.0 + 0.5).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


# ---------------------------------------------------------------- building blocks


def _noise2d(rng, size: int, cells: int, octaves: int = 4, persistence: float = 0.5) -> np.ndarray:
    """Fractal (fBm) value noise in [0, 1]: random grids upsampled bicubically and summed."""
    total = np.zeros((size, size), np.float32)
    amplitude, weight = 1.0, 0.0
    for octave in range(octaves):
        n = cells * 2**octave + 1
        grid = Image.fromarray(rng.random((n, n), dtype=np.float32), mode="F")
        total += amplitude * np.asarray(grid.resize((size, size), Image.Resampling.BICUBIC))
        weight += amplitude
        amplitude *= persistence
    total /= weight
    return _normalise(total)


def _ridge(rng, size: int, base: float, height: float, cells: int, octaves: int = 5, smooth=False) -> np.ndarray:
    """A fractal skyline: the row (0 = top) where terrain starts, for each column.

    Linear interpolation between random knots gives jagged rock; `smooth` eases
    between knots (smoothstep) for rolling dunes and hills.
    """
    x = np.linspace(0.0, 1.0, size, dtype=np.float32)
    line = np.zeros(size, np.float32)
    amplitude = 1.0
    for octave in range(octaves):
        n = cells * 2**octave + 1
        knots = rng.random(n).astype(np.float32)
        position = x * (n - 1)
        left = np.minimum(position.astype(int), n - 2)
        t = position - left
        if smooth:
            t = t * t * (3 - 2 * t)
        line += amplitude * (knots[left] * (1 - t) + knots[left + 1] * t)
        amplitude *= 0.5
    line = _normalise(line)
    return (base - height * line) * size


def _below(rows: np.ndarray, size: int) -> np.ndarray:
    """Mask (size, size) of pixels below a per-column boundary, softened over ~1 px."""
    y = np.arange(size, dtype=np.float32)[:, None]
    return np.clip(y - rows[None, :] + 0.5, 0.0, 1.0)


def _sky(rng, size: int, mood: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Sky gradient with sun glow and clouds; returns (image, horizon colour)."""
    mood = mood or rng.choice(["day", "day", "day", "golden", "overcast"])
    zenith, horizon = (np.array(c, np.float32) for c in _SKIES[mood])
    jitter = rng.normal(0, 0.03, 3).astype(np.float32)
    zenith, horizon = np.clip(zenith + jitter, 0, 1), np.clip(horizon + jitter, 0, 1)
    t = np.linspace(0.0, 1.0, size, dtype=np.float32)[:, None, None] ** 0.8
    sky = np.broadcast_to((1 - t) * zenith + t * horizon, (size, size, 3)).copy()
    if mood != "overcast":
        sun_x, sun_y = rng.uniform(0.1, 0.9) * size, rng.uniform(0.1, 0.45) * size
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        glow = np.exp(-((xx - sun_x) ** 2 + (yy - sun_y) ** 2) / (2 * (0.12 * size) ** 2))
        sun_colour = np.array([1.0, 0.95, 0.8] if mood == "day" else [1.0, 0.75, 0.4], np.float32)
        sky += 0.35 * glow[..., None] * (sun_colour - sky)
    cover = {"day": rng.uniform(0.0, 0.5), "golden": rng.uniform(0.2, 0.6), "overcast": 0.9}[mood]
    clouds = np.clip((_noise2d(rng, size, 3, 5) - (1 - cover)) * 3.0, 0, 1)[..., None]
    cloud_colour = np.array([0.96, 0.96, 0.97] if mood == "day" else [0.85, 0.72, 0.68], np.float32)
    if mood == "overcast":
        cloud_colour = np.array([0.68, 0.70, 0.73], np.float32)
    sky = sky * (1 - 0.85 * clouds) + 0.85 * clouds * cloud_colour
    return sky, horizon


def _haze(layer: np.ndarray, horizon: np.ndarray, amount: float) -> np.ndarray:
    """Aerial perspective: distant terrain fades towards the horizon colour."""
    return (1 - amount) * layer + amount * horizon


def _textured(colour, rng, size: int, cells: int, strength: float) -> np.ndarray:
    """A flat colour modulated by fractal noise (grass, sand, rock, foliage)."""
    noise = _noise2d(rng, size, cells, 4, 0.6)[..., None]
    return np.asarray(colour, np.float32) * (1 - strength + 2 * strength * noise)


def _compose(base: np.ndarray, layer: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return base * (1 - mask[..., None]) + layer * mask[..., None]


def _vary(rng, colour, amount: float = 0.06) -> np.ndarray:
    return np.clip(np.asarray(colour, np.float32) + rng.normal(0, amount, 3).astype(np.float32), 0, 1)


def _normalise(values: np.ndarray) -> np.ndarray:
    low, high = values.min(), values.max()
    return (values - low) / (high - low + 1e-6)


# ---------------------------------------------------------------- classes


def _coast(rng, size):
    image, horizon = _sky(rng, size)
    horizon_row = rng.uniform(0.35, 0.55) * size
    sea_colour = _vary(rng, (0.05, 0.32, 0.52))
    rows = np.arange(size, dtype=np.float32)[:, None, None]
    depth = np.clip((rows - horizon_row) / (size - horizon_row), 0, 1)
    waves = _noise2d(rng, size, 6, 4)[..., None]
    waves = np.asarray(Image.fromarray(waves[..., 0]).resize((size * 3, size)).crop((0, 0, size, size)))[..., None]
    reflection = image[::-1] * 0.35  # water mirrors the sky, darker
    sea = (0.65 * sea_colour + reflection) * (0.85 + 0.3 * waves) * (1 - 0.25 * depth)
    sea = _haze(sea, horizon, 0.35 * (1 - depth))
    image = _compose(image, sea, _below(np.full(size, horizon_row, np.float32), size))
    if rng.random() < 0.3:  # a headland on the horizon
        cliff = _ridge(rng, size, horizon_row / size + 0.01, rng.uniform(0.05, 0.15), 2) * 1.0
        cliff = np.where(np.linspace(0, 1, size) < rng.uniform(0.2, 0.5), cliff, horizon_row + 1)
        land = _haze(_textured(_vary(rng, (0.32, 0.36, 0.22)), rng, size, 8, 0.3), horizon, 0.4)
        image = _compose(image, land, _below(cliff, size) * (rows[..., 0] <= horizon_row + 0.5))
    shore = _ridge(rng, size, rng.uniform(0.75, 0.95), rng.uniform(0.05, 0.2), 2, 4)
    sand = _textured(_vary(rng, (0.86, 0.76, 0.56), 0.03), rng, size, 16, 0.12)
    foam = np.clip(1 - np.abs(rows[..., 0] - shore[None, :]) / 3.0, 0, 1)
    image = _compose(image, sand, _below(shore, size))
    return _compose(image, np.full_like(image, 0.95), 0.8 * foam)


def _desert(rng, size):
    image, horizon = _sky(rng, size, rng.choice(["day", "day", "golden"]))
    sand = _vary(rng, (0.90, 0.68, 0.38), 0.05)
    y = np.arange(size, dtype=np.float32)[:, None]
    layers = int(rng.integers(2, 5))
    for i in range(layers):
        far = 1 - i / max(layers - 1, 1)
        crest = _ridge(rng, size, rng.uniform(0.45, 0.6) + 0.12 * i, rng.uniform(0.05, 0.15), 2, 2, smooth=True)
        # Sunlit near the crest, shading into the trough; wind ripples follow the slope.
        depth = np.clip((y - crest[None, :]) / (0.25 * size), 0, 1)[..., None]
        wobble = 6.0 * _noise2d(rng, size, 4, 2)
        ripples = 0.025 * np.sin((y + wobble) * rng.uniform(0.6, 1.2))[..., None]
        dune = _textured(sand, rng, size, 12, 0.06) * (1.05 - 0.3 * depth) + ripples
        image = _compose(image, _haze(dune, horizon, 0.35 * far), _below(crest, size))
    return image


def _forest(rng, size):
    image, horizon = _sky(rng, size)
    green = _vary(rng, rng.choice([(0.14, 0.36, 0.12), (0.20, 0.42, 0.16), (0.12, 0.30, 0.16)]), 0.04)
    treeline = _ridge(rng, size, rng.uniform(0.05, 0.45), 0.15, 12, 3)
    x = np.arange(size, dtype=np.float32)[None, :]
    y = np.arange(size, dtype=np.float32)[:, None]
    canopy = _textured(green, rng, size, 24, 0.45)
    # Conifer crowns: rows of triangles whose tips follow the treeline.
    for row in range(3):
        spacing = size / rng.uniform(8, 16)
        phase = rng.uniform(0, spacing)
        offset = np.abs(((x + phase) % spacing) - spacing / 2) * rng.uniform(1.5, 3.0)
        tips = treeline[None, :] + row * size * 0.12 + offset
        shade = 0.55 + 0.25 * row + 0.25 * _noise2d(rng, size, 8, 2)
        layer = _haze(canopy * shade[..., None], horizon, 0.25 * (2 - row) / 2)
        image = _compose(image, layer, np.clip(y - tips + 0.5, 0, 1))
    floor_row = rng.uniform(0.85, 1.0) * size
    floor = _textured(_vary(rng, (0.30, 0.22, 0.12)), rng, size, 20, 0.35)
    return _compose(image, floor, _below(np.full(size, floor_row, np.float32), size))


def _glacier(rng, size):
    image, horizon = _sky(rng, size, rng.choice(["day", "day", "overcast"]))
    ice = _vary(rng, (0.82, 0.92, 0.97), 0.03)
    crevasse_colour = _vary(rng, (0.35, 0.62, 0.78), 0.04)
    peaks = _ridge(rng, size, rng.uniform(0.35, 0.55), rng.uniform(0.15, 0.3), 3, 5)
    rock = _textured(_vary(rng, (0.42, 0.42, 0.45), 0.02), rng, size, 10, 0.3)
    snow = _textured(ice, rng, size, 10, 0.06)
    exposure = _noise2d(rng, size, 6, 4) > rng.uniform(0.6, 0.8)  # rock showing through
    mountain = np.where(exposure[..., None], rock, snow)
    image = _compose(image, _haze(mountain, horizon, 0.2), _below(peaks, size))
    front = _ridge(rng, size, rng.uniform(0.6, 0.75), 0.08, 4, 4)
    cracks = np.abs(_noise2d(rng, size, 5, 5) - 0.5) < 0.035
    body = _textured(_vary(rng, (0.70, 0.86, 0.94), 0.03), rng, size, 8, 0.12)
    body = np.where(cracks[..., None], crevasse_colour, body)
    image = _compose(image, body, _below(front, size))
    if rng.random() < 0.5:  # meltwater lake in front of the ice
        water = _vary(rng, (0.20, 0.55, 0.62), 0.04) * (0.9 + 0.2 * _noise2d(rng, size, 16, 2)[..., None])
        image = _compose(image, water, _below(np.full(size, rng.uniform(0.82, 0.95) * size, np.float32), size))
    return image


def _mountains(rng, size):
    image, horizon = _sky(rng, size)
    layers = int(rng.integers(2, 4))
    snowline = rng.uniform(0.25, 0.45) * size
    y = np.arange(size, dtype=np.float32)[:, None]
    for i in range(layers):
        far = 1 - i / max(layers - 1, 1)
        crest = _ridge(rng, size, 0.45 + 0.15 * i, rng.uniform(0.2, 0.35) * (1 - 0.3 * i), 3, 6)
        colour = _vary(rng, (0.38, 0.36, 0.33) if far > 0.5 else (0.22, 0.34, 0.16))
        slope = _textured(colour, rng, size, 10, 0.35)
        if far > 0.5:  # snow caps above the snow line, ragged by noise
            cap = (y + 20 * _noise2d(rng, size, 8, 3)) < snowline
            slope = np.where(cap[..., None], _vary(rng, (0.93, 0.95, 0.98), 0.02), slope)
        image = _compose(image, _haze(slope, horizon, 0.55 * far), _below(crest, size))
    meadow_row = rng.uniform(0.8, 0.95) * size
    meadow = _textured(_vary(rng, (0.30, 0.50, 0.18)), rng, size, 24, 0.3)
    return _compose(image, meadow, _below(_ridge(rng, size, meadow_row / size, 0.05, 3), size))


_PAINTERS = {
    "coast": _coast,
    "desert": _desert,
    "forest": _forest,
    "glacier": _glacier,
    "mountains": _mountains,
}
