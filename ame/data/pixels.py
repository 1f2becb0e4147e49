"""Decoding any image PIL opens to 8-bit RGB without losing its content (no torch: used when preparing)."""

from __future__ import annotations

from PIL import Image

# Modes PIL's own convert("RGB") maps faithfully (8 bits per channel, palettes, bilevel, alpha dropped).
EIGHT_BIT_MODES = frozenset({"1", "L", "P", "RGB", "RGBA", "RGBX", "RGBa", "CMYK", "YCbCr", "LAB", "HSV", "LA",
                             "PA"})


def decodable(mode: str) -> bool:
    """Whether `to_rgb` can turn an image of PIL mode `mode` into 8-bit RGB without losing it."""
    return mode in EIGHT_BIT_MODES or mode in ("I", "F") or mode.startswith("I;16")


def to_rgb(img: Image.Image, where: str = "image") -> Image.Image:
    """8-bit RGB with the content preserved: 8-bit modes through PIL; 16-bit integer images
    (I;16*) scaled by 255/65535 over their full range; 32-bit integer (I) and float (F) images, whose
    range is not fixed, rescaled linearly from their own min..max to 0..255 (a constant image gives
    0). PIL's own convert would clip those to 0..255 instead. Raises ValueError for other modes."""
    import numpy as np

    if img.mode in EIGHT_BIT_MODES:
        return img.convert("RGB")
    if img.mode.startswith("I;16"):
        values = np.asarray(img, dtype=np.float64)
        scaled = np.round(values * 255.0 / 65535.0)
    elif img.mode in ("I", "F"):
        values = np.asarray(img, dtype=np.float64)
        finite = values[np.isfinite(values)]
        if finite.size != values.size:
            raise ValueError(f"{where}: {img.mode}-mode image holds NaN or infinite values")
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        scaled = np.zeros_like(values) if high == low else np.round((values - low) * 255.0 / (high - low))
    else:
        raise ValueError(f"{where}: PIL mode {img.mode!r} is not supported; convert the image to 8-bit RGB "
                         f"or greyscale (e.g. PNG)")
    return Image.fromarray(np.clip(scaled, 0, 255).astype(np.uint8), "L").convert("RGB")
