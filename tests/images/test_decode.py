"""open_image gives upright 8-bit RGB with the colours a viewer shows, or ImageError with a reason."""

import numpy as np
import pytest
from PIL import Image

from explorer.images.decode import MAX_PIXELS, ImageError, load_rgb_array, open_image, probe, to_rgb
from tests.robustness.hostile import animated_gif, exif_rotated_jpeg, palette_with_transparency, png_declaring


def _write(tmp_path, name, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_greyscale_becomes_equal_rgb(tmp_path):
    Image.new("L", (3, 3), 77).save(tmp_path / "g.png")
    Image.new("1", (3, 3), 1).save(tmp_path / "bw.png")
    assert open_image(tmp_path / "g.png").getpixel((1, 1)) == (77, 77, 77)
    assert open_image(tmp_path / "bw.png").getpixel((1, 1)) == (255, 255, 255)


def test_transparency_is_composited_on_white(tmp_path):
    Image.new("RGBA", (2, 2), (255, 0, 0, 128)).save(tmp_path / "half.png")
    Image.new("LA", (2, 2), (0, 0)).save(tmp_path / "clear.png")
    r, g, b = open_image(tmp_path / "half.png").getpixel((0, 0))
    assert r == 255 and abs(g - 127) <= 1 and g == b  # half red over white is pink, not black or red
    assert open_image(tmp_path / "clear.png").getpixel((0, 0)) == (255, 255, 255)


def test_palette_with_a_transparent_index(tmp_path):
    image = open_image(_write(tmp_path, "p.png", palette_with_transparency()))
    assert image.getpixel((0, 0)) == (255, 255, 255)  # index 0 is transparent (black underneath)
    assert image.getpixel((7, 0)) == (0, 160, 0)


@pytest.mark.parametrize(("value", "grey"), [(0, 0), (30000, 117), (32768, 128), (65535, 255)])
def test_16_bit_greyscale_is_scaled_by_depth_not_clipped_or_stretched(tmp_path, value, grey):
    Image.fromarray(np.full((4, 4), value, np.uint16)).save(tmp_path / "deep.png")
    image = Image.open(tmp_path / "deep.png")
    assert image.mode.startswith("I")
    assert open_image(tmp_path / "deep.png").getpixel((0, 0)) == (grey, grey, grey)


def test_16_bit_gradient_keeps_its_levels(tmp_path):
    ramp = np.linspace(0, 65535, 256).astype(np.uint16).reshape(16, 16)
    Image.fromarray(ramp).save(tmp_path / "ramp.png")
    grey = np.asarray(open_image(tmp_path / "ramp.png"))[..., 0].ravel()
    assert np.abs(grey.astype(int) - np.arange(256)).max() <= 1


def test_32_bit_and_float_greyscale():
    assert to_rgb(Image.fromarray(np.full((2, 2), 65535, np.int32))).getpixel((0, 0)) == (255, 255, 255)
    assert to_rgb(Image.fromarray(np.full((2, 2), 0.5, np.float32))).getpixel((0, 0)) == (128, 128, 128)
    signed = to_rgb(Image.fromarray(np.array([[-5.0, 5.0]], np.float32)))  # no natural range: stretched
    assert signed.getpixel((0, 0)) == (0, 0, 0) and signed.getpixel((1, 0)) == (255, 255, 255)


def test_cmyk_becomes_rgb(tmp_path):
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "c.jpg", quality=95)
    r, g, b = open_image(tmp_path / "c.jpg").getpixel((4, 4))
    assert r > 240 and g < 15 and b < 15


def test_exif_orientation_is_applied(tmp_path):
    path = _write(tmp_path, "rotated.jpg", exif_rotated_jpeg())
    assert Image.open(path).size == (64, 32)  # as stored
    image = open_image(path)
    assert image.size == (32, 64) and probe(path)[:2] == (32, 64)
    top, bottom = np.asarray(image)[8, 16].astype(int), np.asarray(image)[56, 16].astype(int)
    assert top[0] > 200 and top[2] < 60  # red on top
    assert bottom[2] > 200 and bottom[0] < 60  # blue below


def test_damaged_exif_keeps_the_pixels(tmp_path, monkeypatch):
    import explorer.images.decode as decode

    def broken(image):
        raise SyntaxError("not a TIFF file")  # what PIL raises for some damaged EXIF blocks

    monkeypatch.setattr(decode.ImageOps, "exif_transpose", broken)
    path = _write(tmp_path, "rotated.jpg", exif_rotated_jpeg())
    assert open_image(path).size == (64, 32)


def test_animated_gif_gives_its_first_frame(tmp_path):
    path = _write(tmp_path, "a.gif", animated_gif())
    assert Image.open(path).n_frames == 3
    assert open_image(path).getpixel((8, 8)) == (255, 0, 0)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_decompression_bombs_are_refused_before_decoding(tmp_path):
    with pytest.raises(ImageError, match="too large"):
        open_image(_write(tmp_path, "over.png", png_declaring(15_000, 15_000)))  # between our limit and PIL's
    with pytest.raises(ImageError, match="too large"):
        open_image(_write(tmp_path, "huge.png", png_declaring(100_000, 100_000)))
    assert 15_000 * 15_000 > MAX_PIXELS


def test_extreme_shapes_resize(tmp_path):
    Image.new("RGB", (20000, 100), (40, 50, 60)).save(tmp_path / "wide.png")
    Image.new("RGB", (1, 1), (1, 2, 3)).save(tmp_path / "dot.png")
    assert load_rgb_array(tmp_path / "wide.png", 16).shape == (16, 16, 3)
    assert (load_rgb_array(tmp_path / "dot.png", 8) == (1, 2, 3)).all()


@pytest.mark.parametrize(
    ("data", "reason"),
    [(b"", "not an image"), (b"plain text, not an image", "not an image"), (b"\x89PNG\r\n\x1a\n", "not an image")],
)
def test_non_images_name_the_reason(tmp_path, data, reason):
    with pytest.raises(ImageError, match=reason):
        open_image(_write(tmp_path, "x.png", data))
    with pytest.raises(ImageError, match="not found"):
        open_image(tmp_path / "missing.png")
    with pytest.raises(ImageError, match="directory"):
        (tmp_path / "dir.png").mkdir(exist_ok=True)
        open_image(tmp_path / "dir.png")
