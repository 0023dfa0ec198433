"""Per-frame files and the counts table (``sasnet_core.io.video_frames``): one name for a frame's
files, whether the command line saved them or the app stored them; one counts table."""
from __future__ import annotations

import csv
from types import SimpleNamespace

from sasnet_core.io import video_frames as vf


def test_a_frame_is_named_with_six_digits_so_frames_sort_in_order(tmp_path):
    names = [vf.frame_image_path(tmp_path / "street.avi", i, tmp_path).name for i in (2, 21, 100)]
    assert names == ["street_frame000002.png", "street_frame000021.png", "street_frame000100.png"]
    assert names == sorted(names)
    assert vf.frame_stem("street", 21) + ".npy" == "street_frame000021.npy"


def test_a_frame_stored_under_the_older_name_is_still_found(tmp_path):
    video = tmp_path / "street.avi"
    assert vf.stored_frame_image(video, 21, tmp_path) is None
    older = tmp_path / "street_frame21.png"
    older.write_bytes(b"png")
    assert vf.stored_frame_image(video, 21, tmp_path) == older
    assert vf.stored_frame_image(video, 2, tmp_path) is None  # frame 2 is not frame 21's prefix
    current = vf.frame_image_path(video, 21, tmp_path)
    current.write_bytes(b"png")
    assert vf.stored_frame_image(video, 21, tmp_path) == current  # today's name first


def test_the_frame_pattern_finds_a_videos_frames_only(tmp_path):
    for name in ("cam[1]_frame000000.txt", "cam[1]_frame000004.txt", "cam[1].txt", "cam1_frame000000.txt"):
        (tmp_path / name).write_text("")
    found = sorted(p.name for p in tmp_path.glob(vf.frame_files_pattern("cam[1]", ".txt")))
    assert found == ["cam[1]_frame000000.txt", "cam[1]_frame000004.txt"]


def test_the_counts_table_has_one_row_per_frame_in_order(tmp_path):
    records = [SimpleNamespace(frame=4, time_s=0.4, count=12.3456, error=None),
               SimpleNamespace(frame=0, time_s=0.0, count=None, error="cannot decode the frame")]
    out = vf.write_counts_csv(tmp_path / "counts.csv", records)
    rows = list(csv.DictReader(open(out, newline="", encoding="utf-8")))
    assert tuple(rows[0]) == vf.COUNTS_CSV_COLUMNS == ("frame", "time_s", "count", "error")
    assert [(r["frame"], r["time_s"], r["count"], r["error"]) for r in rows] == [
        ("0", "0.000", "", "cannot decode the frame"), ("4", "0.400", "12.346", "")]
