"""Every image mode PIL opens is decoded to 8-bit RGB with its content, or rejected by name."""

import numpy as np
import pytest
from PIL import Image

from ame.data.images import ImageReadError, load_rgb
from ame.data.pixels import decodable, to_rgb

GRADIENT = np.arange(256, dtype=np.uint8).reshape(16, 16)


def _saved(img: Image.Image, tmp_path, fmt="TIFF"):
    path = tmp_path / f"img.{fmt.lower()}"
    img.save(path, fmt)
    with Image.open(path) as reopened:
        assert reopened.mode == img.mode  # the file really holds that mode
    return path


def _grey(path) -> np.ndarray:
    rgb = np.asarray(load_rgb(path))
    assert rgb.dtype == np.uint8 and rgb.shape == (16, 16, 3)
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
    return rgb[..., 0].astype(int)


@pytest.mark.parametrize("mode", ["L", "LA", "P"])
def test_eight_bit_grey_modes_keep_every_value(tmp_path, mode):
    img = Image.fromarray(GRADIENT, "L").convert(mode)
    assert (_grey(_saved(img, tmp_path)) == GRADIENT).all()


def test_bilevel_images_are_black_and_white(tmp_path):
    img = Image.fromarray(np.where(GRADIENT < 128, 0, 255).astype(np.uint8), "L").convert("1")
    assert set(np.unique(_grey(_saved(img, tmp_path, "PNG")))) == {0, 255}


@pytest.mark.parametrize("mode, colour", [("RGB", (200, 30, 60)), ("RGBA", (200, 30, 60, 128)),
                                          ("CMYK", (0, 255, 255, 0)), ("YCbCr", (76, 85, 255)),
                                          ("LAB", (136, 208, 195))])
def test_colour_modes_decode_to_their_colour(tmp_path, mode, colour):
    rgb = np.asarray(load_rgb(_saved(Image.new(mode, (16, 16), colour), tmp_path))).astype(int)
    expected = {"RGB": (200, 30, 60), "RGBA": (200, 30, 60), "CMYK": (255, 0, 0), "YCbCr": (255, 0, 0),
                "LAB": (255, 0, 0)}[mode]
    assert np.abs(rgb - np.array(expected)).max() <= 12  # colour-space rounding, not clipping


@pytest.mark.parametrize("mode", ["I;16", "I;16B"])
def test_sixteen_bit_images_are_scaled_over_their_full_range_not_clipped(tmp_path, mode):
    values = (GRADIENT.astype(np.uint16) * 257)  # 0 .. 65535
    raw = values.astype("<u2" if mode == "I;16" else ">u2").tobytes()
    img = Image.frombytes(mode, (16, 16), raw)
    assert (_grey(_saved(img, tmp_path)) == GRADIENT).all()


@pytest.mark.parametrize("mode, low, high", [("I", -70000, 200000), ("F", -3.5, 1000.25)])
def test_wide_integer_and_float_images_are_rescaled_from_their_range(tmp_path, mode, low, high):
    values = low + GRADIENT.astype(np.float64) / 255 * (high - low)
    img = Image.fromarray(values.astype(np.int32 if mode == "I" else np.float32))
    assert img.mode == mode
    grey = _grey(_saved(img, tmp_path))
    assert grey.min() == 0 and grey.max() == 255
    assert np.abs(grey - GRADIENT).max() <= 1  # the ramp survives; PIL's convert would clip it to 0/255
    assert len(np.unique(grey)) > 250


def test_a_constant_float_image_is_black_not_a_division_by_zero(tmp_path):
    img = Image.fromarray(np.full((16, 16), 7.5, np.float32))
    assert (_grey(_saved(img, tmp_path)) == 0).all()


def test_non_finite_float_images_and_unknown_modes_are_rejected_naming_the_file(tmp_path):
    values = np.zeros((16, 16), np.float32)
    values[0, 0] = np.nan
    path = _saved(Image.fromarray(values), tmp_path)
    with pytest.raises(ImageReadError, match=f"{path}: cannot read image .*NaN or infinite"):
        load_rgb(path)
    with pytest.raises(ValueError, match="x.png: PIL mode 'La' is not supported"):
        to_rgb(Image.new("La", (2, 2)), "x.png")
    assert not decodable("La") and decodable("I;16B") and decodable("F")
