"""Videos through ``sasnet count --json``: a container that states no length must be read to its
end (never counted as 0 frames), damaged and mislabelled files are named, lost frames are skipped
records (never a count of 0), and what is not a file is refused."""
from __future__ import annotations

from hostile import ACCEPTED, REFUSED, SKIPPED, Case, Ctx, media, write_input
from hostile.cases_images import records


def _count(ctx: Ctx, *paths, every: int = 1, extra=()) -> list:
    return ["count", *paths, "--weights", ctx.weights, "--json", "--no-progress", "--every", every, *extra]


def _frames(result) -> list[int]:
    return [r["frame"] for r in records(result) if not r.get("skipped")]


def frames_counted(name: str, build, every: int, expected: list[int], extra=()) -> Case:
    """A valid video: exactly the frames ``expected`` are counted."""
    def make(ctx: Ctx):
        return _count(ctx, build(ctx), every=every, extra=extra), []

    def check(ctx: Ctx, result) -> None:
        assert _frames(result) == expected, result.out
        assert all(r["count"] is not None and r["width"] == 64 for r in records(result))

    return Case(name, make, ACCEPTED, check)


def unreadable(name: str, file: str, data, *words: str) -> Case:
    """A file that is not a readable video: exit 1, named, one skipped record."""
    def make(ctx: Ctx):
        path = write_input(ctx.tmp / file, data(ctx) if callable(data) else data)
        return _count(ctx, path), [file, *words]

    def check(ctx: Ctx, result) -> None:
        (rec,) = records(result)
        assert rec["skipped"] is True and rec["count"] is None and rec["path"].endswith(file), rec

    return Case(name, make, SKIPPED, check)


def _mkv_no_duration(frames: int):
    return lambda ctx: media.make_mkv_without_duration(ctx.tmp / "interrupted.mkv", frames=frames)


def _avi(frames: int, name: str = "clip.avi"):
    return lambda ctx: media.make_video(ctx.tmp / name, frames=frames)


def _cut_video(ctx: Ctx, keep: float, suffix: str = ".avi") -> bytes:
    media.make_video(ctx.tmp / f"whole{suffix}", frames=30)
    data = (ctx.tmp / f"whole{suffix}").read_bytes()
    (ctx.tmp / f"whole{suffix}").unlink()
    return data[: int(len(data) * keep)]


def _truncated_avi(ctx: Ctx):
    """The index at the end is lost with the last 40 %: frames past the cut are skipped records."""
    path = write_input(ctx.tmp / "cut.avi", _cut_video(ctx, 0.6))
    return _count(ctx, path), ["cut.avi", "frame"]


def _truncated_avi_check(ctx: Ctx, result) -> None:
    recs = records(result)
    good = [r["frame"] for r in recs if not r.get("skipped")]
    lost = [r for r in recs if r.get("skipped")]
    assert good and lost and all(r["error"] and r["count"] is None for r in lost), recs
    assert max(good) < min(r["frame"] for r in lost)


def _not_a_file(kind: str):
    def make(ctx: Ctx):
        return _count(ctx, media.not_a_file(ctx.tmp / "clip.mp4", kind)), ["clip.mp4"]

    return make


def _video_and_bad_video(ctx: Ctx):
    good = media.make_video(ctx.tmp / "good.avi", frames=4)
    bad = write_input(ctx.tmp / "bad.mkv", b"\x1aE\xdf\xa3" + b"\x00" * 64)
    return _count(ctx, bad, good), ["bad.mkv"]


def _good_frames_still_counted(ctx: Ctx, result) -> None:
    assert _frames(result) == [0, 1, 2, 3], result.out


CASES = [
    # the container states no length: read to the end of the stream
    frames_counted("mkv-without-duration", _mkv_no_duration(9), 1, list(range(9))),
    frames_counted("mkv-without-duration-every-4", _mkv_no_duration(10), 4, [0, 4, 8]),
    frames_counted("mkv-without-duration-by-time", _mkv_no_duration(10), 1, [0, 3, 6, 9],
                   extra=("--time-step", "0.3")),
    frames_counted("plain-avi", _avi(6), 2, [0, 2, 4]),
    frames_counted("one-frame-video", _avi(1), 1, [0]),
    frames_counted("every-beyond-the-end", _avi(5), 1000, [0]),
    frames_counted("uppercase-suffix", _avi(3, "CLIP.AVI"), 1, [0, 1, 2]),
    # damaged or mislabelled
    unreadable("zero-byte-mp4", "empty.mp4", b"", "empty"),
    unreadable("text-named-mp4", "notes.mp4", "this is not a video\n" * 50, "cannot open"),
    unreadable("random-bytes-avi", "noise.avi", bytes(range(256)) * 40),
    unreadable("mp4-header-only", "head.mp4", b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 100),
    unreadable("mkv-header-only", "head.mkv", b"\x1aE\xdf\xa3" + b"\x00" * 64),
    unreadable("avi-cut-to-its-header", "head.avi", lambda ctx: _cut_video(ctx, 0.02)),
    unreadable("jpeg-named-mp4", "photo.mp4", media.encoded(media.rgb(), "JPEG")[:200]),
    Case("avi-cut-short", _truncated_avi, SKIPPED, _truncated_avi_check),
    Case("bad-video-beside-a-good-one", _video_and_bad_video, SKIPPED, _good_frames_still_counted),
    # named like a video, but not a file
    Case("folder-named-clip.mp4", _not_a_file("folder"), REFUSED),
    Case("pipe-named-clip.mp4", _not_a_file("pipe"), REFUSED),
    Case("dangling-link-named-clip.mp4", _not_a_file("dangling"), REFUSED),
]
