"""Metrics on hand-computed cases, evaluate() with a fake predictor, and `sasnet eval`."""
import csv
import json
import os
from types import SimpleNamespace

import numpy as np
import pytest
from _data_paths import SHANGHAITECH_A, SHANGHAITECH_A_COUNTS, STREET_B, UCF_CC_50, need

from sasnet_core.annotations.annotation import Annotation, save_annotation
from sasnet_core.datasets import open_dataset
from sasnet_core.evaluation import metrics
from sasnet_core.evaluation.evaluate import evaluate


def test_mae_rmse_nae_by_hand():
    gt, pred = [10, 20, 0], [12, 14, 1]
    assert metrics.mae(gt, pred) == pytest.approx((2 + 6 + 1) / 3)
    assert metrics.mse(gt, pred) == pytest.approx(np.sqrt((4 + 36 + 1) / 3))  # root, as papers
    assert metrics.nae(gt, pred) == pytest.approx((2 / 10 + 6 / 20) / 2)  # gt = 0 skipped


def test_game_cells_by_hand():
    dens = np.zeros((8, 8))
    dens[1, 1] = 2.0  # top-left cell: predicts 2
    pts = np.array([[6.5, 1.0], [1.0, 1.0]])  # one head top-right, one top-left
    assert metrics.game(dens, pts, 0) == 0.0  # totals agree
    assert metrics.game(dens, pts, 1) == pytest.approx(2.0)  # TL: |2-1|, TR: |0-1|
    assert metrics.cell_counts_from_points(pts, (8, 8), 2).sum() == 2
    # odd sizes and images smaller than the grid still give 4^L cells holding all the mass
    d = np.random.default_rng(0).random((5, 3))
    for L in range(4):
        cells = metrics.cell_counts_from_density(d, L)
        assert cells.shape == (2**L, 2**L) and cells.sum() == pytest.approx(d.sum())


class OracleOnPoints:
    """Predicts a density with one unit at each true head plus a fixed bias."""

    def __init__(self, points_by_shape, bias=0.0):
        self.points_by_shape, self.bias = points_by_shape, bias

    def predict(self, image):
        h, w = image.shape[:2]
        d = np.zeros((h, w), np.float32)
        for x, y in self.points_by_shape[(h, w)]:
            d[min(int(y), h - 1), min(int(x), w - 1)] += 1
        d[0, 0] += self.bias
        return SimpleNamespace(count=float(d.sum()), density=d, image_size=(w, h),
                               confidence=np.full((5, 1, 1), 0.2, np.float32),
                               patch_rows=np.array([0, h]), patch_cols=np.array([0, w]))

    def predict_batch(self, images):  # what count_stream calls
        return [self.predict(image) for image in images]


def test_evaluate_with_fake_predictor_and_roi(tmp_path):
    import cv2

    for name, size in (("a.jpg", (40, 30)), ("b.jpg", (50, 20))):
        cv2.imwrite(str(tmp_path / name), np.zeros((size[1], size[0], 3), np.uint8))
    roi = [[10, 0], [40, 0], [40, 30], [10, 30]]  # excludes x < 10, so (0, 0) too
    save_annotation(Annotation(str(tmp_path / "a.jpg"), (40, 30), [[5, 5], [20, 5], [30, 20]],
                               rois=[roi]), tmp_path / "a.jpg.sasnet.json")
    save_annotation(Annotation(str(tmp_path / "b.jpg"), (50, 20), [[1, 1], [2, 2]]),
                    tmp_path / "b.jpg.sasnet.json")
    ds = open_dataset(tmp_path)
    fake = OracleOnPoints({(30, 40): [[5, 5], [20, 5], [30, 20]], (20, 50): [[1, 1], [2, 2]]}, bias=3)
    calls = []
    rep = evaluate(fake, ds, progress=lambda done, total: calls.append((done, total)))
    rows = {r["image"].rsplit("/", 1)[1]: r for r in rep.rows}
    assert rows["a.jpg"]["gt_count"] == 2  # ROI restricts the ground truth...
    assert rows["a.jpg"]["pred_count"] == pytest.approx(2)  # ...and the prediction (bias at 0,0)
    assert rows["b.jpg"]["pred_count"] == pytest.approx(5)
    assert rep.mae == pytest.approx(1.5) and rep.mse == pytest.approx(np.sqrt(4.5))
    assert calls == [(1, 2), (2, 2)]
    no_roi = evaluate(fake, ds, roi=False)
    assert no_roi.rows[0]["gt_count"] == 3 and no_roi.rows[0]["pred_count"] == pytest.approx(6)
    rep.write_csv(tmp_path / "r.csv")
    with open(tmp_path / "r.csv") as fh:
        got = list(csv.DictReader(fh))
    assert {"image", "gt_count", "pred_count"} <= set(got[0]) and len(got) == 2
    assert json.loads(rep.to_json())["summary"]["images"] == 2


def test_evaluate_perfect_predictor_scores_zero_on_real_data():
    sample = open_dataset(need(STREET_B), "test")[0]
    oracle = OracleOnPoints({sample.load_image().shape[:2]: sample.points})
    rep = evaluate(oracle, [sample])
    assert rep.rows[0]["gt_count"] == 16 and rep.mae == 0 and rep.game[3] == 0
    biased = evaluate(OracleOnPoints(oracle.points_by_shape, bias=4), [sample])
    assert biased.mae == pytest.approx(4) and biased.game[3] == pytest.approx(4)


# -- sasnet eval end to end with a small random-weights model ------------------------------------
@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from sasnet_core.model.config import SASNetConfig
    from sasnet_core.model.sasnet import SASNet
    from sasnet_core.weights.checkpoint import save_checkpoint

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "tiny.pth"
    save_checkpoint(path, SASNet(SASNetConfig(width_mult=0.0625)))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("root, n, counts", [
    (SHANGHAITECH_A, 5, sorted(SHANGHAITECH_A_COUNTS.values())),
    (STREET_B, 8, None),
])
def test_cli_eval_reads_every_ground_truth(tmp_path, tiny_weights, capsys, root, n, counts):
    from sasnet_core.cli import main

    need(root)
    out = tmp_path / "rows.csv"
    assert main(["eval", str(root), "--weights", str(tiny_weights), "--csv", str(out), "--json",
                 "--device", "cpu", "--max-side", "128"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["summary"]["images"] == n
    with open(out) as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == n and all(r["split"] == "test" for r in rows)
    if counts:
        assert sorted(int(float(r["gt_count"])) for r in rows) == counts
    for key in ("mae", "mse", "nae", "game0", "game1", "game2", "game3"):
        assert np.isfinite(report["summary"][key])


@pytest.mark.slow
def test_cli_eval_ucf_fold(tmp_path, tiny_weights, capsys):
    from sasnet_core.cli import main

    need(UCF_CC_50)
    out = tmp_path / "rows.csv"
    assert main(["eval", str(UCF_CC_50), "--weights", str(tiny_weights), "--fold", "1",
                 "--csv", str(out), "--device", "cpu", "--max-side", "96"]) == 0
    text = capsys.readouterr().out
    assert "MAE" in text and "GAME(3)" in text
    with open(out) as fh:
        rows = list(csv.DictReader(fh))
    assert [int(float(r["gt_count"])) for r in rows][:4] == [4633, 1940, 2364, 96]
    assert len(rows) == 10


def test_progress_is_quiet_off_a_terminal_but_prints_a_final_line(monkeypatch):
    import io

    from sasnet_core.util.progress import Progress

    monkeypatch.delenv("SASNET_PROGRESS", raising=False)
    log = io.StringIO()  # not a TTY
    with Progress(3, desc="eval", stream=log, unit="img") as bar:
        for _ in range(3):
            bar.update()
    assert log.getvalue().count("\n") == 1 and "3/3" in log.getvalue() and "\r" not in log.getvalue()
    live = io.StringIO()
    bar = Progress(2, desc="eval", stream=live, enabled=True, min_interval=0)
    bar.update()
    assert "\r" in live.getvalue() and "1/2" in live.getvalue() and "ETA" in live.getvalue()
    bar.close()
    off = io.StringIO()
    with Progress(1, stream=off, enabled=False) as bar:  # --no-progress: nothing at all
        bar.update()
    assert off.getvalue() == ""
    monkeypatch.setenv("SASNET_PROGRESS", "0")
    silent = io.StringIO()
    with Progress(1, stream=silent) as bar:
        bar.update()
    assert silent.getvalue() == ""


def test_report_json_is_standard_when_a_figure_is_undefined():
    from sasnet_core.evaluation.evaluate import EvalReport

    row = {"image": "a.jpg", "split": "test", "gt_count": 0.0, "pred_count": 1.5, "abs_error": 1.5,
           **{f"game{L}": 1.5 for L in range(4)}}
    text = EvalReport([row]).to_json()  # NAE is undefined: no image has people
    assert "NaN" not in text and json.loads(text)["summary"]["nae"] is None
    assert json.loads(EvalReport().to_json())["summary"]["mae"] is None  # no image at all


# -- sasnet eval: the default model, bad options, unreadable images -----------------------------------
@pytest.fixture
def annotated(tmp_path):
    """A folder of three annotated images (two, one and no heads)."""
    from sasnet_core.io.imageio import write_image

    root = tmp_path / "set"
    root.mkdir()
    rng = np.random.default_rng(0)
    for name, pts in (("img_1.png", [[3, 4], [20, 10]]), ("img_2.png", [[8, 8]]), ("img_10.png", [])):
        write_image(root / name, rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
        save_annotation(Annotation(str(root / name), (64, 48), np.array(pts, float).reshape(-1, 2)),
                        root / f"{name}.sasnet.json")
    return root


def test_cli_eval_uses_the_default_model_as_count_does(annotated, tiny_weights, capsys):
    from sasnet_core.cli import main

    assert main(["eval", str(annotated), "--json"]) == 2  # no model at all: says how to get one
    assert "sasnet models add" in capsys.readouterr().err
    assert main(["models", "add", "tiny", str(tiny_weights), "--default"]) == 0
    capsys.readouterr()
    assert main(["eval", str(annotated), "--json", "--device", "cpu"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["image"].rsplit("/", 1)[1] for r in report["images"]] == ["img_1.png", "img_2.png", "img_10.png"]
    assert [r["gt_count"] for r in report["images"]] == [2, 1, 0] and report["skipped"] == []


def test_cli_eval_reports_an_unreadable_image_and_goes_on(annotated, tiny_weights, capsys):
    from sasnet_core.cli import main

    (annotated / "img_2.png").write_bytes(b"\x89PNG\r\n\x1a\n damaged")
    assert main(["eval", str(annotated), "--weights", str(tiny_weights), "--json", "--device", "cpu"]) == 1
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["summary"]["images"] == 2
    assert [r["gt_count"] for r in report["images"]] == [2, 0]  # the damaged image is not a 0
    (skipped,) = report["skipped"]
    assert skipped["image"].endswith("img_2.png") and "not a readable image" in skipped["error"]
    assert "img_2.png: not a readable image" in captured.err


@pytest.mark.parametrize("option, value", [
    ("--limit", "-1"), ("--limit", "0"), ("--fold", "9"), ("--fold", "0"), ("--device", "banana"),
    ("--max-side", "10"), ("--csv", "."),
])
def test_cli_eval_bad_options_are_usage_errors(annotated, option, value, capsys):
    from sasnet_core.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["eval", str(annotated), option, value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert option in err and ("is a folder" in err if option == "--csv" else value in err)


def test_cli_eval_keeps_an_existing_csv_and_refuses_an_unwritable_one_before_counting(
        annotated, tiny_weights, tmp_path, capsys, monkeypatch):
    import errno
    import tempfile

    from sasnet_core.cli import eval_cmd, main

    kept = tmp_path / "per_image.csv"
    kept.write_text("earlier results\n")
    args = ["eval", str(annotated), "--weights", str(tiny_weights), "--device", "cpu", "--no-progress"]
    assert main([*args, "--csv", str(kept)]) == 2
    assert "per_image.csv: already exists; --overwrite replaces it" in capsys.readouterr().err
    assert kept.read_text() == "earlier results\n"

    # a folder where no file can be created (read-only, no permission) is found before any image
    # is counted, so a long run is not thrown away at its end
    locked = tmp_path / "locked"
    locked.mkdir()
    real_mkstemp = tempfile.mkstemp

    def mkstemp(*a, dir=None, **kw):
        if dir is not None and os.path.abspath(dir) == str(locked):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(dir))
        return real_mkstemp(*a, dir=dir, **kw)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(eval_cmd, "evaluate", lambda *a, **k: pytest.fail("counted before the check"))
    assert main([*args, "--csv", str(locked / "e.csv")]) == 2
    assert "e.csv: cannot be written: Permission denied" in capsys.readouterr().err

    monkeypatch.undo()
    assert main([*args, "--csv", str(kept), "--overwrite"]) == 0
    assert kept.read_text().startswith("image,split,gt_count")


@pytest.mark.slow
def test_sasnet_eval_and_the_training_validation_give_the_same_mae(tmp_path, capsys):
    """A run's validation figure is what `sasnet eval` reports for its checkpoint on the same
    images: one evaluation, one metric set."""
    from sasnet_core.cli import main
    from sasnet_core.training import read_json_lines

    data, run = need(STREET_B), tmp_path / "run"
    assert main(["train", str(data), "--out", str(run), "--steps", "1", "--width-mult", "0.0625",
                 "--encoder-weights", "none", "--crop-size", "64", "--images-per-step", "2",
                 "--workers", "0", "--no-progress", "--device", "cpu", "--precision", "fp32"]) == 0
    end = read_json_lines(run / "log.jsonl")[-1]
    val = [r for r in read_json_lines(run / "log.jsonl") if r.get("event") == "val"][-1]
    capsys.readouterr()
    assert main(["eval", str(data), "--weights", str(run / "last.pth"), "--json", "--device", "cpu",
                 "--backend", "torch", "--precision", "fp32", "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out)["summary"]
    assert summary["images"] == val["n"] == 8
    assert summary["mae"] == pytest.approx(end["mae"], rel=1e-6)
    assert summary["mse"] == pytest.approx(end["mse"], rel=1e-6)
    assert summary["mae"] > 0  # a one-step model is far from right: the figure is a real one


def test_cli_eval_batches_as_count_does_and_the_figures_do_not_change(tiny_weights, capsys, monkeypatch):
    """`sasnet eval` takes the engine's batch option and default (1 on the CPU, as `count`); a
    batch of several images of one size gives the same figures as one at a time."""
    from sasnet_core.cli import eval_cmd, main

    seen = []
    real = eval_cmd.evaluate
    monkeypatch.setattr(eval_cmd, "evaluate", lambda *a, **k: seen.append(k["batch_size"]) or real(*a, **k))
    args = ["eval", str(need(STREET_B)), "--weights", str(tiny_weights), "--device", "cpu",
            "--backend", "torch", "--limit", "4", "--json", "--no-progress"]
    figures = []
    for extra in ([], ["--batch-size", "3"]):
        assert main([*args, *extra]) == 0
        summary = json.loads(capsys.readouterr().out)["summary"]
        figures.append((summary["images"], round(summary["mae"], 4), round(summary["mse"], 4)))
    assert seen == [1, 3]
    assert figures[0] == figures[1] and figures[0][0] == 4
