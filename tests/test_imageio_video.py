"""Images as a person sees them (EXIF, 16-bit, grayscale, every format) and video frames."""
from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from hostile import media, write_input
from hostile.media import make_video  # noqa: F401 - also used by test_cli_count
from PIL import Image

from sasnet_core.io.imageio import (
    MAX_MEGAPIXELS_ENV,
    image_size,
    read_image,
    write_image,
)
from sasnet_core.io.video import (
    count_frames,
    frame_indices,
    iter_frames,
    open_video,
    read_frame,
)
from sasnet_core.util.errors import ImageReadError, VideoReadError


def _rgb(h=24, w=40):
    img = np.zeros((h, w, 3), np.uint8)
    img[:, : w // 2, 0] = 200  # left half red
    img[: h // 2, :, 2] = 100  # top half blue
    return img


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".webp", ".jpg"])
def test_every_format_reads_as_rgb(tmp_path, suffix):
    img = _rgb()
    path = tmp_path / f"im{suffix}"
    Image.fromarray(img).save(path, **({"quality": 100} if suffix == ".jpg" else {"lossless": True} if suffix == ".webp" else {}))
    out = read_image(path)
    assert out.shape == img.shape and out.dtype == np.uint8
    tol = 8 if suffix == ".jpg" else 0
    assert np.abs(out.astype(int) - img).max() <= tol + (30 if suffix == ".jpg" else 0)
    assert out[2, 2, 0] > 150 and out[2, -2, 0] < 50  # red stays red: channels are RGB, not BGR
    assert image_size(path) == (40, 24)


def test_exif_orientation_is_applied(tmp_path):
    img = _rgb(20, 30)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = tmp_path / "rot.jpg"
    Image.fromarray(img).save(path, exif=exif, quality=100)
    out = read_image(path)
    assert out.shape == (30, 20, 3)
    assert image_size(path) == (20, 30)
    # after a clockwise turn the red left half is on top
    assert out[2, 10, 0] > 150 and out[-2, 10, 0] < 60


def test_16bit_and_grayscale(tmp_path):
    gray16 = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "g16.png"), gray16)
    out = read_image(tmp_path / "g16.png")
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    assert out[-1, -1, 0] == round(gray16[-1, -1] / 257) and (out[..., 0] == out[..., 2]).all()
    rgb16 = np.stack([gray16, gray16 // 2, gray16 // 4], axis=2)
    cv2.imwrite(str(tmp_path / "c16.tif"), rgb16[:, :, ::-1])
    out = read_image(tmp_path / "c16.tif")
    assert out[-1, -1].tolist() == [round(v / 257) for v in rgb16[-1, -1]]
    Image.fromarray(np.full((8, 8), 77, np.uint8), "L").save(tmp_path / "g.png")
    assert read_image(tmp_path / "g.png")[0, 0].tolist() == [77, 77, 77]


@pytest.mark.parametrize("content,match", [(b"", "empty"), (b"\xff\xd8\xff\xe0garbage", "not a readable image")])
def test_unreadable_images_name_the_file(tmp_path, content, match):
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageReadError, match=f"bad.jpg.*{match}"):
        read_image(path)


def test_truncated_jpeg_and_missing_file(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(_rgb(64, 64)).save(buf, "JPEG")
    (tmp_path / "cut.jpg").write_bytes(buf.getvalue()[:20])
    with pytest.raises(ImageReadError, match="cut.jpg"):
        read_image(tmp_path / "cut.jpg")
    with pytest.raises(ImageReadError, match="nope.png"):
        read_image(tmp_path / "nope.png")


def test_write_image_round_trip(tmp_path):
    img = _rgb()
    write_image(tmp_path / "o.png", img)
    assert (read_image(tmp_path / "o.png") == img).all()


def test_video_every_nth_frame_and_time_step(tmp_path):
    path = make_video(tmp_path / "v.avi")
    info = open_video(path)
    assert (info.frame_count, info.width, info.height) == (20, 64, 48)
    assert info.fps == pytest.approx(10.0) and info.duration_s == pytest.approx(2.0)
    recs = list(iter_frames(path, every_n=5))
    assert [r.index for r in recs] == [0, 5, 10, 15]
    assert [r.time_s for r in recs] == pytest.approx([0, 0.5, 1.0, 1.5])
    for r in recs:
        assert r.error is None and abs(int(r.image[0, 0, 0]) - r.index * 10) <= 6  # RGB: red first
    assert frame_indices(info, time_step=0.7) == [0, 7, 14]
    assert abs(int(read_frame(path, 13)[0, 0, 0]) - 130) <= 6


def test_damaged_videos(tmp_path, capfd):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(np.random.default_rng(0).integers(0, 256, 2000, np.uint8)))
    with pytest.raises(VideoReadError, match="bad.mp4"):
        open_video(bad)
    assert "moov atom" not in capfd.readouterr().err  # FFmpeg's own line: ours names the file
    make_video(tmp_path / "first.avi", frames=2)  # OpenCV's FFmpeg was used before: still quiet
    with pytest.raises(VideoReadError, match="bad.mp4"):
        open_video(bad)
    assert "moov atom" not in capfd.readouterr().err
    with pytest.raises(VideoReadError, match="missing.avi"):
        list(iter_frames(tmp_path / "missing.avi"))
    path = make_video(tmp_path / "v.avi", frames=10)
    with pytest.raises(VideoReadError, match="past the end"):
        read_frame(path, 50)
    with pytest.raises(ValueError):
        frame_indices(open_video(path), every_n=0)


def test_truncated_video_gives_skipped_frame_records_not_zeros(tmp_path):
    path = make_video(tmp_path / "v.avi", frames=30)
    data = path.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: int(len(data) * 0.6)])  # header still claims 30 frames
    recs = list(iter_frames(cut))
    good = [r for r in recs if r.image is not None]
    bad = [r for r in recs if r.image is None]
    assert good and bad, "some frames decode, the lost ones are reported"
    assert all(r.error for r in bad)
    assert max(r.index for r in good) < min(r.index for r in bad)


# -- hostile images: refused at once and by name, or read correctly ----------------------------------
@pytest.mark.parametrize("name, data, declared", [
    ("bomb.png", media.png_declaring(30000, 30000), "900 megapixels"),
    ("bomb.bmp", media.bmp_declaring(100000, 100000), "10,000 megapixels"),
    ("bomb.tif", media.tiff_declaring(200000, 200000), "40,000 megapixels"),
    ("wide.png", media.png_declaring(11000, 10000), "11000 x 10000 pixels"),
])
def test_a_header_declaring_too_many_pixels_is_refused_before_decoding(tmp_path, name, data, declared):
    path = write_input(tmp_path / name, data)
    with pytest.raises(ImageReadError, match=f"{name}: declares {declared}.*limit of 100 megapixels"):
        read_image(path)


def test_the_pixel_limit_is_configurable(tmp_path, monkeypatch):
    path = tmp_path / "a.png"
    write_image(path, media.rgb(40, 50))
    monkeypatch.setenv(MAX_MEGAPIXELS_ENV, "0.001")  # 1000 pixels
    with pytest.raises(ImageReadError, match=r"a.png: declares 50 x 40 pixels \(0.002 megapixels\)"):
        read_image(path)
    monkeypatch.setenv(MAX_MEGAPIXELS_ENV, "0.002")
    assert read_image(path).shape == (40, 50, 3)
    from PIL import Image

    assert Image.MAX_IMAGE_PIXELS == 2000  # Pillow's own limit follows ours



@pytest.mark.parametrize("value", ["abc", "-1", "0", "nan"])
def test_a_pixel_limit_that_is_not_a_number_is_said_once(tmp_path, monkeypatch, caplog, value):
    from sasnet_core.io.imageio import DEFAULT_MAX_MEGAPIXELS

    path = tmp_path / "a.png"
    write_image(path, media.rgb(40, 50))
    monkeypatch.setenv(MAX_MEGAPIXELS_ENV, value)
    with caplog.at_level("WARNING"):
        for _ in range(3):
            assert read_image(path).shape == (40, 50, 3)
    said = [r.getMessage() for r in caplog.records if MAX_MEGAPIXELS_ENV in r.getMessage()]
    assert said == [f"{MAX_MEGAPIXELS_ENV}={value!r} is not a number of megapixels above 0; "
                    f"using the default, {DEFAULT_MAX_MEGAPIXELS}"]


@pytest.mark.parametrize("mode, fmt", [
    ("CMYK", "JPEG"), ("P", "PNG"), ("RGBA", "PNG"), ("LA", "PNG"), ("L", "BMP"), ("RGBA", "WEBP"),
    ("CMYK", "TIFF"), ("F", "TIFF"), ("I", "TIFF"),
])
def test_every_colour_mode_reads_as_rgb(tmp_path, mode, fmt):
    img = media.rgb()
    save = {"quality": 100} if fmt == "JPEG" else {"lossless": True} if fmt == "WEBP" else {}
    path = write_input(tmp_path / f"im.{fmt.lower()}", media.encoded(img, fmt, mode, **save))
    out = read_image(path)
    assert out.shape == img.shape and out.dtype == np.uint8
    if mode in ("F", "I", "L", "LA"):  # one channel: gray, the same in R, G and B
        assert (out[..., 0] == out[..., 2]).all() and out[:, :32].mean() > out[:, 32:].mean()
    else:
        assert out[:, :32, 0].mean() > 180 and out[:, 32:, 0].mean() < 100  # red stays red, left


def test_png_bytes_named_jpg_still_read_and_text_named_jpg_is_refused(tmp_path):
    img = media.rgb()
    assert (read_image(write_input(tmp_path / "png.jpg", media.encoded(img, "PNG"))) == img).all()
    with pytest.raises(ImageReadError, match="notes.jpg: not a readable image"):
        read_image(write_input(tmp_path / "notes.jpg", b"shopping list: eggs, milk\n"))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "BMP", "TIFF", "WEBP"])
def test_truncated_images_are_refused_not_half_read(tmp_path, fmt):
    data = media.encoded(media.rgb(), fmt)
    path = write_input(tmp_path / f"cut.{fmt.lower()}", data[: len(data) * 2 // 3])
    with pytest.raises(ImageReadError, match=f"cut.{fmt.lower()}: not a readable image"):
        read_image(path)


def test_folders_and_pipes_named_like_images_are_refused_without_blocking(tmp_path):
    import os

    (tmp_path / "x.jpg").mkdir()
    with pytest.raises(ImageReadError, match="x.jpg: is a folder, not an image file"):
        read_image(tmp_path / "x.jpg")
    os.mkfifo(tmp_path / "pipe.png")  # reading it would wait for a writer forever
    with pytest.raises(ImageReadError, match="pipe.png: not a regular file"):
        read_image(tmp_path / "pipe.png")
    os.mkfifo(tmp_path / "pipe.mp4")
    with pytest.raises(VideoReadError, match="pipe.mp4: not a regular file"):
        open_video(tmp_path / "pipe.mp4")


# -- videos whose container does not tell the truth --------------------------------------------------
def test_video_without_a_stated_length_is_read_until_it_ends(tmp_path):
    path = media.make_mkv_without_duration(tmp_path / "rec.mkv", frames=12)
    info = open_video(path)
    assert not info.frame_count_known and info.width == 64
    recs = list(iter_frames(path, every_n=5))
    assert [r.index for r in recs] == [0, 5, 10] and all(r.image is not None for r in recs)
    assert abs(int(recs[2].image[0, 0, 0]) - 100) <= 6  # the frame it says it is
    assert [r.index for r in iter_frames(path, time_step=0.4)] == [0, 4, 8]
    assert len(list(iter_frames(path))) == 12
    assert count_frames(path) == 12  # what the app shows on its slider once measured


@pytest.mark.parametrize("name, data, match", [
    ("empty.mp4", b"", "empty.mp4: file is empty"),
    ("notes.mp4", b"this is not a video\n" * 20, "notes.mp4: cannot open video"),
])
def test_empty_and_text_videos_are_refused_by_name(tmp_path, name, data, match):
    with pytest.raises(VideoReadError, match=match):
        open_video(write_input(tmp_path / name, data))
