"""Training, fine-tuning and their command lines, on tiny models (width_mult 0.125) and tiny data."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from sasnet_core.training import make_optimizer, read_json_lines, train_steps
from sasnet_core.training.data import TensorCropDataset, collate_crops
from sasnet_core.training.synthetic import blob_image, make_blob_dataset, random_points

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
TINY = ["--width-mult", "0.125", "--encoder-weights", "none", "--crop-size", "64",
        "--images-per-step", "2", "--workers", "0", "--no-progress"]


def _tiny_model(seed=0, selection="soft"):
    from sasnet_core.model.config import SASNetConfig
    from sasnet_core.model.sasnet import sasnet

    torch.manual_seed(seed)
    return sasnet(config=SASNetConfig(width_mult=0.125, selection=selection))


def _cli(argv) -> int:
    from sasnet_core.cli import main

    return main([str(a) for a in argv])


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    env["SASNET_STUDIO_HOME"] = env.get("SASNET_STUDIO_HOME", "/tmp/sasnet-test-home")
    return env


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: on a shared 2-core machine torch's OpenMP threads spin against other
    processes and a tiny step can take 30x longer; one thread keeps these tests fast and steady."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def blob_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("blobs")
    make_blob_dataset(root, 6, size=(96, 128), seed=1)
    make_blob_dataset(root, 2, size=(96, 128), split="test", seed=2)
    return root


def _blob_crops(n=6, size=64, seed=0):
    from sasnet_core.annotations.density import density_map
    from sasnet_core.model.preprocess import normalise

    rng = np.random.default_rng(seed)
    images, targets = [], []
    for i in range(n):
        pts = random_points(int(rng.integers(1, 9)), (size, size), rng, margin=6)
        images.append(normalise(blob_image(pts, (size, size), rng)).contiguous())
        targets.append(torch.from_numpy(density_map(pts, (size, size))).float()[None] * 1000)
    return torch.stack(images), torch.stack(targets)


# ---------------------------------------------------------------------------------------------
# it learns
# ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_overfits_tiny_blob_set():
    images, targets = _blob_crops()
    model = _tiny_model()
    opt = make_optimizer(model, lr=2e-3)
    batches = torch.utils.data.DataLoader(TensorCropDataset(images, targets), batch_size=6,
                                          collate_fn=collate_crops)

    def count_error():
        model.eval()
        with torch.no_grad():
            pred = model(images).density.sum((1, 2, 3)) / 1000
        model.train()
        return float((pred - targets.sum((1, 2, 3)) / 1000).abs().mean())

    before = count_error()
    hist = train_steps(model, opt, batches, 80)
    after = count_error()
    assert len(hist) == 80
    assert hist[-1]["total"] < 0.5 * hist[0]["total"]
    assert after < 0.5 * before, (before, after)


@pytest.mark.slow
def test_short_run_on_street_b_lowers_loss():
    from sasnet_core.training.data import collate_crops as collate
    from sasnet_core.training.data import crop_dataset, load_samples
    from sasnet_core.training.losses import total_loss

    folder = DATA / "street_b_layout" / "train_data"
    if not folder.is_dir():
        pytest.skip(f"shared data not found at {folder} (tests read real data from ../shared/data)")
    samples = load_samples(DATA / "street_b_layout", split="train")[:8]
    torch.manual_seed(0)
    crops = crop_dataset(samples, crop_size=64, crops_per_image=4)
    fixed = collate([crops[i] for i in range(len(samples))])  # the same 32 crops before and after
    model = _tiny_model()

    def loss_on_fixed():
        with torch.no_grad():
            return total_loss(model(fixed[0]), fixed[1])[1]["total"]

    model.train()
    before = loss_on_fixed()
    loader = torch.utils.data.DataLoader(crops, batch_size=4, shuffle=True, collate_fn=collate)
    train_steps(model, make_optimizer(model, lr=1e-3), loader, 25)
    model.train()
    after = loss_on_fixed()
    assert after < before, (before, after)


@pytest.mark.parametrize("selection,use_pra", [("hard", True), ("average", True), ("soft", False)])
def test_ablation_switches_train(selection, use_pra):
    images, targets = _blob_crops(n=2)
    model = _tiny_model(selection=selection)
    opt = make_optimizer(model, lr=1e-3)
    w0 = model.confidence_head1[1].conv.weight.detach().clone()
    hist = train_steps(model, opt, [(images, targets)], 2, use_pra=use_pra)
    assert all(np.isfinite(h["total"]) for h in hist)
    assert (hist[0]["hard_fraction"] > 0) == use_pra
    assert not torch.equal(w0, model.confidence_head1[1].conv.weight)  # L_conf trains the branch


def test_non_finite_loss_raises_before_the_weights_change():
    images, targets = _blob_crops(n=2)
    model = _tiny_model()
    opt = make_optimizer(model, lr=1e-3)
    before = {k: v.clone() for k, v in model.state_dict().items() if v.is_floating_point()}
    targets[0, 0, 0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="diverged"):
        train_steps(model, opt, [(images, targets)], 1)
    # parameters and Adam state untouched (BN running stats do move in the forward pass)
    assert all(torch.equal(before[n], p) for n, p in model.named_parameters())
    assert not opt.state


def test_freeze_encoder_keeps_encoder_and_its_bn_stats(blob_set, tmp_path):
    from sasnet_core.training.config import ENCODER_STAGES
    from sasnet_core.training.steps import freeze_stages_, set_train_mode

    images, targets = _blob_crops(n=2)
    model = _tiny_model()
    freeze_stages_(model, ENCODER_STAGES)
    enc = {k: v.clone() for k, v in model.features1.state_dict().items()}
    dec = model.de_pred1[0].conv.weight.detach().clone()
    train_steps(model, make_optimizer(model, lr=1e-3), [(images, targets)], 2, freeze_stages=ENCODER_STAGES)
    assert all(torch.equal(enc[k], v) for k, v in model.features1.state_dict().items())
    assert not torch.equal(dec, model.de_pred1[0].conv.weight)
    set_train_mode(model, ENCODER_STAGES)
    assert not model.features1.training and model.de_pred1.training


def _stage_state(model, i: int) -> dict:
    """Encoder stage i's parameters and BatchNorm buffers (running mean, variance, batch count)."""
    return {k: v.detach().clone() for k, v in getattr(model, f"features{i}").state_dict().items()}


def test_freeze_stages_4_keeps_stages_1_to_4_bit_identical_and_stage_5_learns():
    from sasnet_core.training.steps import freeze_stages_

    images, targets = _blob_crops(n=2)
    model = _tiny_model()
    freeze_stages_(model, 4)
    before = {i: _stage_state(model, i) for i in range(1, 6)}
    grads = {}  # whether each stage's output is part of the autograd graph
    for i in range(1, 6):
        getattr(model, f"features{i}").register_forward_hook(
            lambda _m, _in, out, i=i: grads.__setitem__(i, out.requires_grad))
    train_steps(model, make_optimizer(model, lr=1e-3), [(images, targets)], 3, freeze_stages=4)
    for i in range(1, 5):
        after = _stage_state(model, i)
        assert any("running_mean" in k for k in after)
        assert all(torch.equal(before[i][k], after[k]) for k in after), f"features{i} changed"
        assert all(p.grad is None for p in getattr(model, f"features{i}").parameters())
    five = _stage_state(model, 5)
    changed = {k for k in five if not torch.equal(before[5][k], five[k])}
    assert any(k.endswith("weight") for k in changed)  # it learns
    assert any(k.endswith("running_mean") for k in changed)  # its BatchNorm statistics update
    # the frozen stages ran without autograd: no graph, so no gradient is computed through them
    assert grads == {1: False, 2: False, 3: False, 4: False, 5: True}


def test_freeze_encoder_is_freeze_stages_5_in_configs_old_and_new():
    from sasnet_core.training import TrainConfig
    from sasnet_core.training.resume import changed_since_start

    assert TrainConfig(freeze_encoder=True).freeze_stages == 5
    assert TrainConfig(freeze_stages=5).freeze_encoder and not TrainConfig(freeze_stages=4).freeze_encoder
    old = {"data": "", "train_config": {"freeze_encoder": True, "fold": None, "selection": "soft"}}
    assert TrainConfig.from_dict(old["train_config"]).freeze_stages == 5  # a config written before
    assert changed_since_start(old, TrainConfig(freeze_encoder=True)) == []
    assert changed_since_start(old, TrainConfig(freeze_stages=5)) == []
    assert changed_since_start(old, TrainConfig()) == [
        "it ran with --freeze-stages 5, this run asks for 0 (--freeze-encoder is --freeze-stages 5)"]
    for bad in (dict(freeze_stages=6), dict(freeze_stages=-1), dict(freeze_encoder=True, freeze_stages=2)):
        with pytest.raises(ValueError, match="freeze"):
            TrainConfig(**bad)


# ---------------------------------------------------------------------------------------------
# sasnet train: logs, checkpoints, resume
# ---------------------------------------------------------------------------------------------
def test_cli_train_logs_checkpoints_and_resume(blob_set, tmp_path, capsys):
    from sasnet_core.weights.checkpoint import load_model

    run = tmp_path / "run"
    log = tmp_path / "progress.jsonl"
    args = ["train", blob_set, "--out", run, *TINY, "--steps", 6, "--val-every", 3,
            "--log-every", 2, "--log-json", log, "--lr", "1e-3"]
    assert _cli(args) == 0
    recs = read_json_lines(log)
    assert recs[0]["event"] == "start" and recs[0]["config"]["lam"] == 10.0
    assert recs[0]["train_images"] == 6 and recs[0]["val_images"] == 2
    assert recs[-1]["event"] == "end" and recs[-1]["status"] == "completed"
    assert recs[-1]["checkpoint"] == str(run / "last.pth") and recs[-1]["mae"] is not None
    steps = [r for r in recs if r["event"] == "step"]
    assert steps and all({"loss", "den", "conf", "pra", "images_per_s", "eta_s"} <= set(r) for r in steps)
    vals = [r for r in recs if r["event"] == "val"]
    assert [v["step"] for v in vals] == [3, 6]
    model, info = load_model(run / "last.pth")
    assert info.metadata["steps"] == 6 and info.config.width_mult == 0.125
    best, binfo = load_model(run / "best.pth")
    assert binfo.metadata["best_step"] in (3, 6)

    # resume: continues at step 7 with the optimiser state, appends to the same log
    assert _cli(["train", blob_set, "--out", run, *TINY, "--steps", 8, "--val-every", 0,
                 "--resume", "--lr", "1e-3"]) == 0
    recs = read_json_lines(run / "log.jsonl")
    start = [r for r in recs if r["event"] == "start"][-1]
    assert start["resumed_from_step"] == 6
    assert recs[-1]["event"] == "end" and recs[-1]["step"] == 8
    _, info = load_model(run / "last.pth")
    assert info.metadata["steps"] == 8

    # resuming with a different set of trainable parameters is explained, not a traceback
    assert _cli(["train", blob_set, "--out", run, *TINY, "--steps", 10, "--resume", "--freeze-encoder"]) == 2
    assert "it ran with --freeze-stages 0, this run asks for 5" in capsys.readouterr().err

    # the width is fixed by the weights: another one is refused, not recorded and ignored
    wide = [a if a != "0.125" else "0.25" for a in TINY]
    assert _cli(["train", blob_set, "--out", run, *wide, "--steps", 10, "--resume"]) == 2
    err = capsys.readouterr().err
    assert "width 0.125" in err and "--width-mult 0.125" in err
    assert load_model(run / "last.pth")[1].metadata["steps"] == 8
    # not given at all: the run goes on at its own width, and its records say so
    unsaid = [a for i, a in enumerate(TINY) if a != "--width-mult" and (i == 0 or TINY[i - 1] != "--width-mult")]
    assert _cli(["train", blob_set, "--out", run, *unsaid, "--steps", 9, "--val-every", 0, "--resume"]) == 0
    resumed = load_model(run / "last.pth")[1]
    assert resumed.metadata["steps"] == 9 and resumed.metadata["train_config"]["width_mult"] == 0.125
    # another scale selection or data set is another run, not this one resumed
    assert _cli(["train", blob_set, "--out", run, *TINY, "--steps", 12, "--resume", "--selection", "hard"]) == 2
    assert "it ran with --selection soft, this run asks for hard" in capsys.readouterr().err
    other = tmp_path / "other"
    shutil.copytree(blob_set, other)
    assert _cli(["train", other, "--out", run, *TINY, "--steps", 12, "--resume"]) == 2
    assert f"this run names {other.resolve()}" in capsys.readouterr().err
    # already past the steps asked for: said, not reported as trained
    assert _cli(["train", blob_set, "--out", run, *TINY, "--steps", 5, "--resume", "--val-every", 0]) == 0
    assert "is at step 9 already, --steps is 5: nothing left to train" in capsys.readouterr().err

    # what `sasnet models` and the app say of a trained model: its data, steps and figures
    from sasnet_core.weights.released import describe_metadata

    assert binfo.metadata["status"] == "best"
    text = describe_metadata("ours", binfo.metadata)
    assert f"trained on {Path(blob_set).name}" in text and "held-out MAE" in text
    assert "no training data recorded" not in text


def test_resume_steps_at_the_runs_own_rate_unless_another_is_asked(blob_set, tmp_path):
    """A resumed run keeps the rate its optimiser ran at (not the paper's default, which nobody
    asked for), and records that rate; ``--lr`` on a resume replaces it from the next step."""
    run = tmp_path / "run"
    base = ["train", blob_set, "--out", run, *TINY, "--val-every", 0, "--log-every", 1]
    assert _cli([*base, "--steps", 2, "--lr", "1e-3"]) == 0
    assert _cli([*base, "--steps", 4, "--resume"]) == 0
    recs = read_json_lines(run / "log.jsonl")
    starts = [r for r in recs if r["event"] == "start"]
    assert [s["config"]["lr"] for s in starts] == [1e-3, 1e-3]
    assert {r["step"]: r["lr"] for r in recs if r["event"] == "step"} == {1: 1e-3, 2: 1e-3, 3: 1e-3, 4: 1e-3}

    assert _cli([*base, "--steps", 6, "--resume", "--lr", "2.5e-4"]) == 0
    recs = read_json_lines(run / "log.jsonl")
    assert [r["lr"] for r in recs if r["event"] == "step" and r["step"] > 4] == [2.5e-4, 2.5e-4]
    assert [r for r in recs if r["event"] == "start"][-1]["config"]["lr"] == 2.5e-4
    said = [r["text"] for r in recs if r["event"] == "message" and "learning rate" in r["text"]]
    assert said == ["learning rate 0.00025 from step 5 (the run stepped at 0.001)"]
    from sasnet_core.weights.checkpoint import load_model

    assert load_model(run / "last.pth")[1].metadata["train_config"]["lr"] == 2.5e-4
    # --resume where there is no run yet starts one, at the paper's rate
    fresh = tmp_path / "fresh"
    assert _cli(["train", blob_set, "--out", fresh, *TINY, "--val-every", 0, "--steps", 1, "--resume"]) == 0
    assert [r["lr"] for r in read_json_lines(fresh / "log.jsonl") if r["event"] == "step"] == [1e-5]


def test_log_json_stdout_is_json_lines(blob_set, tmp_path, capsys):
    assert _cli(["train", blob_set, "--out", tmp_path / "r", *TINY, "--steps", 2,
                 "--val-every", 0, "--log-json", "-"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    recs = [json.loads(line) for line in lines]
    assert recs[0]["event"] == "start" and recs[-1]["event"] == "end"


def test_train_refuses_test_only_data(tmp_path):
    make_blob_dataset(tmp_path, 2, split="test")
    assert _cli(["train", tmp_path, "--out", tmp_path / "r", *TINY, "--steps", 1]) == 2


# ---------------------------------------------------------------------------------------------
# sasnet finetune
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    from sasnet_core.weights.checkpoint import save_checkpoint

    path = tmp_path_factory.mktemp("w") / "tiny.pth"
    save_checkpoint(path, _tiny_model(), {"name": "tiny"})
    return path


def test_finetune_provenance_before_after_and_registry(tiny_weights, tmp_path):
    from sasnet_core.weights.checkpoint import load_model
    from sasnet_core.weights.registry import ModelRegistry

    data = tmp_path / "mine"
    make_blob_dataset(data, 5, layout="annotations", reviewed=[True, True, False, True, True])
    out, log = tmp_path / "ft.pth", tmp_path / "ft.jsonl"
    assert _cli(["finetune", tiny_weights, data, "--out", out, "--steps", 3, "--crop-size", 64,
                 "--images-per-step", 2, "--workers", 0, "--no-progress", "--log-json", log]) == 0
    _, info = load_model(out)
    m = info.metadata
    assert m["parent"] == str(tiny_weights) and m["kind"] == "finetuned" and m["steps"] == 3
    assert m["finetune_images"] == 3 and m["holdout_images"] == 1  # 4 reviewed, 20% held out
    assert m["val_mae_before"] is not None and m["val_mae"] is not None and m["trained"]
    assert m["data_folder"] == str(data.resolve())
    recs = read_json_lines(log)
    assert recs[0]["event"] == "start" and recs[-1]["event"] == "end"
    assert recs[-1]["mae_before"] is not None and recs[-1]["checkpoint"] == str(out)
    assert [r["phase"] for r in recs if r["event"] == "val"] == ["before", "final"]
    entry = ModelRegistry(tmp_path / "models.json").add("ft", out)
    assert entry.metadata["parent"] == str(tiny_weights)


def _bn_running_stats(state: dict) -> dict:
    return {k: v for k, v in state.items() if k.endswith(("running_mean", "running_var"))}


@pytest.mark.parametrize("bn_stats", [None, "update"])
def test_finetune_keeps_batchnorm_statistics_unless_asked(tiny_weights, tmp_path, bn_stats):
    """Fine-tuning on a few images keeps the starting model's BatchNorm statistics (re-estimated
    on them, they shift every count) while the weights learn; ``--bn-stats update`` re-estimates
    them as full training does."""
    from sasnet_core.weights.checkpoint import load_model

    data = tmp_path / "mine"
    make_blob_dataset(data, 4, layout="annotations", reviewed=True)
    out = tmp_path / "ft.pth"
    extra = [] if bn_stats is None else ["--bn-stats", bn_stats]
    assert _cli(["finetune", tiny_weights, data, "--out", out, "--steps", 3, "--crop-size", 64,
                 "--images-per-step", 2, "--workers", 0, "--no-progress", "--lr", "1e-3", *extra]) == 0
    before, _ = load_model(tiny_weights)
    after, _ = load_model(out)
    b, a = before.state_dict(), after.state_dict()
    stats = _bn_running_stats(b)
    assert stats
    moved = [k for k in stats if not torch.equal(a[k], b[k])]
    assert moved == [] if bn_stats is None else len(moved) == len(stats)
    assert any(not torch.equal(a[k], b[k]) for k in b if k.endswith("weight"))  # it did learn


def test_finetune_into_a_folder_that_takes_no_files_is_refused_before_training(tiny_weights, tmp_path,
                                                                               capsys, monkeypatch):
    import errno
    import importlib
    import tempfile

    finetune = importlib.import_module("sasnet_core.training.finetuning")  # the module, not its function

    data = tmp_path / "mine"
    make_blob_dataset(data, 3, layout="annotations", reviewed=True)
    locked = tmp_path / "locked"
    locked.mkdir()
    real_mkstemp = tempfile.mkstemp

    def mkstemp(*a, dir=None, **kw):  # read-only or no permission, as root cannot be made to see it
        if dir is not None and os.path.abspath(dir) == str(locked):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(dir))
        return real_mkstemp(*a, dir=dir, **kw)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(finetune, "train", lambda *a, **k: pytest.fail("trained before the check"))
    assert _cli(["finetune", tiny_weights, data, "--out", locked / "m.pth", "--steps", 3]) == 2
    assert "m.pth: cannot be written: Permission denied" in capsys.readouterr().err


def test_finetune_bad_input_exits_nonzero_with_message(tiny_weights, tmp_path, capsys):
    data = tmp_path / "unreviewed"
    make_blob_dataset(data, 2, layout="annotations", reviewed=False)
    log = tmp_path / "f.jsonl"
    code = _cli(["finetune", tiny_weights, data, "--out", tmp_path / "x.pth", "--log-json", log])
    assert code == 2
    assert "none marked reviewed" in capsys.readouterr().err
    recs = read_json_lines(log)
    assert [r["event"] for r in recs] == ["start", "error", "end"] and recs[-1]["status"] == "failed"
    assert not (tmp_path / "x.pth").exists()

    empty = tmp_path / "empty"
    empty.mkdir()
    assert _cli(["finetune", tiny_weights, empty, "--out", tmp_path / "y.pth"]) == 2
    assert _cli(["finetune", tmp_path / "missing.pth", data, "--out", tmp_path / "z.pth",
                 "--all-annotated"]) == 2
    (tmp_path / "exists.pth").write_bytes(b"x")
    assert _cli(["finetune", tiny_weights, data, "--out", tmp_path / "exists.pth",
                 "--all-annotated"]) == 2
    assert "exists" in capsys.readouterr().err


@pytest.mark.slow
def test_sigterm_stops_after_step_with_valid_output(tiny_weights, tmp_path):
    from sasnet_core.weights.checkpoint import load_model

    data = tmp_path / "mine"
    make_blob_dataset(data, 4, layout="annotations")
    out, log = tmp_path / "ft.pth", tmp_path / "ft.jsonl"
    cmd = [sys.executable, "-m", "sasnet_core", "finetune", str(tiny_weights), str(data),
           "--out", str(out), "--steps", "100000", "--crop-size", "64", "--images-per-step", "2",
           "--workers", "0", "--log-every", "1", "--holdout", "0", "--log-json", str(log)]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            if log.exists() and any(r["event"] == "step" for r in read_json_lines(log)):
                break
            time.sleep(0.2)
        else:
            pytest.fail("no step record within 60 s")
        assert not out.exists()  # nothing written before the end
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = proc.stderr.read().decode()
    assert code == 128 + signal.SIGTERM, err  # 143, the shell's convention for "ended by SIGTERM"
    assert "stopped by SIGTERM after step" in err and "Traceback" not in err
    end = read_json_lines(log)[-1]
    assert end["event"] == "end" and end["status"] == "stopped" and end["stop_reason"] == "SIGTERM"
    _, info = load_model(out)
    assert info.metadata["status"] == "stopped" and info.metadata["steps"] == end["step"] >= 1
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no partial files


def test_stop_file_and_time_limit_end_cleanly(blob_set, tmp_path):
    from sasnet_core.weights.checkpoint import load_model

    stop = tmp_path / "STOP"
    stop.write_text("")
    run = tmp_path / "a"
    assert _cli(["train", blob_set, "--out", run, *TINY, "--steps", 50, "--val-every", 0,
                 "--stop-file", stop]) == 0
    end = read_json_lines(run / "log.jsonl")[-1]
    assert end["status"] == "stopped" and end["stop_reason"] == "stop file" and end["step"] == 0
    load_model(run / "last.pth")  # a valid checkpoint even when stopped before any step

    run = tmp_path / "b"
    assert _cli(["train", blob_set, "--out", run, *TINY, "--steps", 50, "--val-every", 0,
                 "--max-minutes", "0"]) == 0
    end = read_json_lines(run / "log.jsonl")[-1]
    assert end["status"] == "time_limit" and end["mae"] is not None


def test_ucf_cc_50_trains_on_four_folds_and_validates_on_the_chosen_one():
    from _data_paths import UCF_CC_50, need

    from sasnet_core.training.data import load_samples, validation_samples
    from sasnet_core.util.errors import DatasetLayoutError

    root = need(UCF_CC_50)
    with pytest.raises(DatasetLayoutError, match="--fold K"):
        load_samples(root, split="train")
    train = load_samples(root, split="train", fold=2)
    val = validation_samples(root, fold=2)
    assert len(train) == 40 and len(val) == 10
    assert sorted(int(Path(s.image_path).stem) for s in val) == list(range(11, 21))
    assert not {s.image_path for s in train} & {s.image_path for s in val}


def _without_encoder_start(args: list) -> list:
    return [a for a in args if a not in ("--encoder-weights", "none")]  # --init excludes it


@pytest.mark.parametrize("command", ["train", "finetune"])
def test_cli_freeze_stages_keeps_those_stages_and_resume_checks_it(command, blob_set, tiny_weights,
                                                                   tmp_path, capsys):
    from sasnet_core.weights.checkpoint import load_model

    start, _ = load_model(tiny_weights)
    run = tmp_path / "run"
    common = [*_without_encoder_start(TINY), "--lr", "1e-2", "--val-every", 0, "--freeze-stages", 4]
    if command == "train":
        argv = ["train", blob_set, "--out", run, "--init", tiny_weights, "--steps", 3,
                "--log-json", tmp_path / "log.jsonl", *common]
        out = run / "last.pth"
    else:
        common = common[2:] if common[0] == "--width-mult" else common  # fixed by the weights
        argv = ["finetune", tiny_weights, blob_set, "--out", tmp_path / "ft.pth", "--steps", 3, *common]
        out = tmp_path / "ft.pth"
    assert _cli(argv) == 0
    trained, info = load_model(out)
    for i in range(1, 5):
        assert all(torch.equal(v, _stage_state(trained, i)[k]) for k, v in _stage_state(start, i).items())
    five = _stage_state(trained, 5)
    assert any(not torch.equal(v, five[k]) for k, v in _stage_state(start, 5).items() if k.endswith("weight"))
    assert info.metadata["train_config"]["freeze_stages"] == 4 and info.metadata["frozen_stages"] == 4
    if command == "finetune":
        return
    first = read_json_lines(tmp_path / "log.jsonl")[0]
    assert first["config"]["freeze_stages"] == 4
    assert 0 < first["trainable_parameters"] < first["parameters"]
    resume = ["train", blob_set, "--out", run, *TINY, "--steps", 4, "--resume", "--val-every", 0]
    assert _cli([*resume, "--freeze-stages", 3]) == 2
    assert "it ran with --freeze-stages 4, this run asks for 3" in capsys.readouterr().err
    assert _cli(resume) == 2  # not given: no stage frozen, which is another run too
    assert _cli([*resume, "--freeze-stages", 4]) == 0
    assert load_model(run / "last.pth")[1].metadata["steps"] == 4


def test_freeze_stages_option_is_shown_and_checked(capsys):
    from sasnet_core.cli import build_parser

    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--freeze-stages N" in help_text and "learns (default: 0)" in help_text
    for bad in (["--freeze-stages", "6"], ["--freeze-stages", "2", "--freeze-encoder"]):
        with pytest.raises(SystemExit):
            parser.parse_args(["train", str(REPO), "--out", "r", *bad])
        assert "--freeze-stages" in capsys.readouterr().err


def test_ucf_folds_and_street_train_together_and_validate_on_their_test_splits(tmp_path, capsys):
    """The reference run's data: UCF_CC_50 with --fold 1 (folds 2-5 train) and street_b_layout's
    training images, validated on UCF's fold 1 and street's test_data; a resume names the same
    data sets."""
    from _data_paths import STREET_B, UCF_CC_50, need

    from sasnet_core.training.data import load_samples, validation_samples
    from sasnet_core.weights.checkpoint import load_model

    ucf, street = need(UCF_CC_50), need(STREET_B)
    n_ucf = len(load_samples(ucf, split="train", fold=1))
    n_street = len(load_samples(street, split="train"))
    assert (n_ucf, n_street) == (40, 30)
    n_val = len(validation_samples(ucf, fold=1)) + len(validation_samples(street))
    run = tmp_path / "run"
    argv = ["train", ucf, street, "--fold", 1, "--out", run, *TINY, "--steps", 1, "--val-every", 0]
    assert _cli(argv) == 0
    first = read_json_lines(run / "log.jsonl")[0]
    assert first["train_images"] == n_ucf + n_street and first["val_images"] == n_val == 18
    assert first["validation"] == f"{ucf} test split + {street} test split"
    meta = load_model(run / "last.pth")[1].metadata
    assert meta["data"] == [str(ucf.resolve()), str(street.resolve())]
    capsys.readouterr()
    resume = ["train", ucf, "--fold", 1, "--out", run, *TINY, "--steps", 2, "--resume"]
    assert _cli(resume) == 2
    assert f"it learnt from {ucf.resolve()} + {street.resolve()}, this run names {ucf.resolve()}" \
        in capsys.readouterr().err
    from sasnet_core.weights.released import describe_metadata

    assert "trained on ucf_cc_50 + street_b_layout" in describe_metadata("ours", meta)


def test_validation_counts_only_inside_the_region_of_interest(tmp_path):
    from sasnet_core.datasets.layouts import Sample
    from sasnet_core.io.imageio import read_image, write_image
    from sasnet_core.model.config import SASNetConfig
    from sasnet_core.model.preprocess import normalise
    from sasnet_core.model.sasnet import SASNet
    from sasnet_core.training.data import FullImageDataset
    from sasnet_core.training.validation import evaluate

    torch.manual_seed(0)
    model = SASNet(SASNetConfig(width_mult=0.125)).eval()
    rng = np.random.default_rng(0)
    write_image(tmp_path / "a.png", rng.integers(0, 255, (64, 96, 3), dtype=np.uint8))
    points = np.array([[10.0, 10.0], [80.0, 50.0], [20.0, 40.0]])
    roi = np.array([[0.0, 0.0], [48.0, 0.0], [48.0, 64.0], [0.0, 64.0]])  # left half
    sample = Sample(str(tmp_path / "a.png"), points, "test", rois=[roi])
    ds = FullImageDataset([sample])
    _, true, mask = ds[0]
    assert true == 2.0 and mask[:, :48].all() and not mask[:, 48:].any()
    with torch.no_grad():
        full = model(normalise(read_image(tmp_path / "a.png"))[None]).density[0, 0]
    inside = float(full[:, :48].sum()) / 1000.0
    result = evaluate(model, ds, "cpu")
    assert result["mae"] == pytest.approx(abs(inside - 2.0), rel=1e-4)


# ---------------------------------------------------------------------------------------------
# sasnet train: options and run folders
# ---------------------------------------------------------------------------------------------
def test_out_over_an_existing_run_needs_resume_or_overwrite(blob_set, tmp_path, capsys):
    run = tmp_path / "run"
    base = ["train", blob_set, "--out", run, *TINY, "--val-every", 0]
    assert _cli([*base, "--steps", 1]) == 0
    before = (run / "last.pth").read_bytes()
    log_before = (run / "log.jsonl").read_bytes()
    capsys.readouterr()
    assert _cli([*base, "--steps", 2]) == 2
    err = capsys.readouterr().err
    assert str(run) in err and "--resume" in err and "--overwrite" in err and len(err.splitlines()) == 1
    assert (run / "last.pth").read_bytes() == before and (run / "log.jsonl").read_bytes() == log_before
    assert _cli([*base, "--steps", 2, "--overwrite"]) == 0
    assert (run / "last.pth").read_bytes() != before


@pytest.mark.parametrize("option, value", [
    ("--fold", "9"), ("--fold", "0"), ("--images-per-step", "0"), ("--images-per-step", "-1"),
    ("--steps", "0"), ("--steps", "-5"), ("--lr", "0"), ("--lr", "-1e-5"), ("--lr", "nan"),
    ("--crop-size", "0"), ("--crops", "0"), ("--workers", "-1"), ("--holdout", "1"),
    ("--holdout", "-0.1"), ("--sigma", "0"), ("--val-every", "-1"), ("--log-every", "0"),
    ("--max-minutes", "-1"), ("--lam", "-1"), ("--device", "banana"), ("--width-mult", "0"),
])
def test_option_values_are_checked_before_anything_runs(blob_set, tmp_path, capsys, option, value):
    with pytest.raises(SystemExit) as exc:
        _cli(["train", blob_set, "--out", tmp_path / "r", f"{option}={value}"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert option in err and value in err
    assert not (tmp_path / "r").exists()


def test_option_defaults_are_the_config_defaults(capsys):
    from sasnet_core.cli import build_parser
    from sasnet_core.cli.train_cmd import config_from_args
    from sasnet_core.training import TrainConfig, finetune_config

    parser = build_parser()
    args = parser.parse_args(["train", str(REPO), "--out", "r"])
    cfg = config_from_args(args, data="d", out="r")
    expected = TrainConfig(data="d", out="r")
    assert cfg == expected
    args = parser.parse_args(["finetune", "w.pth", str(REPO), "--out", "o.pth"])
    cfg = config_from_args(args)
    want = finetune_config()
    for name in ("steps", "holdout", "val_every", "lr", "images_per_step", "crop_size", "workers"):
        assert getattr(cfg, name) == getattr(want, name), name
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--help"])
    assert f"(default: {TrainConfig.steps})" in capsys.readouterr().out


@pytest.mark.parametrize("where", ["missing", "file", "empty"])
def test_a_data_set_that_is_not_there_is_named(tmp_path, capsys, where):
    data = tmp_path / "data"
    if where == "file":
        data.write_text("x")
    elif where == "empty":
        data.mkdir()
    try:
        code = _cli(["train", data, "--out", tmp_path / "r", *TINY, "--steps", 1])
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert str(data) in err and "Traceback" not in err


def test_out_that_is_a_file_or_inside_one_is_refused(blob_set, tmp_path, capsys):
    blocker = tmp_path / "afile"
    blocker.write_text("keep")
    with pytest.raises(SystemExit) as exc:
        _cli(["train", blob_set, "--out", blocker, *TINY, "--steps", 1])
    assert exc.value.code == 2 and str(blocker) in capsys.readouterr().err
    assert _cli(["train", blob_set, "--out", blocker / "run", *TINY, "--steps", 1]) == 2
    assert str(blocker) in capsys.readouterr().err and blocker.read_text() == "keep"


def test_resume_from_a_damaged_last_checkpoint_is_named(blob_set, tmp_path, capsys):
    run = tmp_path / "run"
    assert _cli(["train", blob_set, "--out", run, *TINY, "--steps", 1, "--val-every", 0]) == 0
    data = (run / "last.pth").read_bytes()
    (run / "last.pth").write_bytes(data[: len(data) // 2])
    capsys.readouterr()
    assert _cli(["train", blob_set, "--out", run, *TINY, "--steps", 2, "--resume"]) == 2
    err = capsys.readouterr().err
    assert str(run / "last.pth") in err and "Traceback" not in err


def test_training_bar_redraws_on_a_terminal_and_writes_a_line_now_and_then_to_a_log(monkeypatch):
    import io

    from sasnet_core.util.progress import StepBar

    monkeypatch.delenv("SASNET_PROGRESS", raising=False)
    log = io.StringIO()  # not a terminal
    bar = StepBar(10, stream=log)
    bar.show(5, "loss 1", eta_s=3.0)
    bar.show(6, "loss 0.9", eta_s=2.0)  # within 30 s of the last line: nothing
    bar.message("step 6: val MAE 1.00")
    bar.show(10, "", eta_s=0.0, force=True)
    bar.close()
    assert log.getvalue().splitlines() == [
        "train [############............] 5/10  50% eta 00:03 loss 1",
        "step 6: val MAE 1.00",
        "train [########################] 10/10 100% eta 00:00 "]

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    term = Terminal()
    bar = StepBar(4, stream=term)
    bar.show(1, "x", eta_s=None)
    bar.show(2, "y", eta_s=None)
    bar.close()
    assert term.getvalue().count("\r") == 2 and "2/4" in term.getvalue() and "eta --:--" in term.getvalue()
    assert term.getvalue().endswith("\n")
    quiet = io.StringIO()
    off = StepBar(4, stream=quiet, enabled=False)  # --no-progress, or a rank other than 0
    off.show(4, force=True)
    off.message("m")
    assert quiet.getvalue() == ""
    monkeypatch.setenv("SASNET_PROGRESS", "0")  # the bar silenced, what happened still said
    figures = io.StringIO()
    silent = StepBar(4, stream=figures)
    silent.show(4, force=True)
    silent.message("step 4: val MAE 2.00")
    assert figures.getvalue() == "step 4: val MAE 2.00\n"


def test_a_model_that_gives_nan_is_validated_as_nan_and_the_image_is_not_blamed():
    """A diverged step (or damaged weights) makes the model's output NaN: validation reports a
    NaN figure, so no new best model is kept, and does not stop the run naming a good image."""
    from _data_paths import STREET_B, need

    from sasnet_core.model.config import SASNetConfig
    from sasnet_core.model.sasnet import sasnet
    from sasnet_core.training.data import load_samples
    from sasnet_core.training.validation import evaluate

    samples = load_samples(need(STREET_B), split="test")[:2]
    model = sasnet(config=SASNetConfig(width_mult=0.0625)).eval()
    healthy = evaluate(model, samples)
    assert healthy["n"] == 2 and np.isfinite(healthy["mae"])
    with torch.no_grad():
        next(p for n, p in model.named_parameters() if n.endswith("bias")).fill_(float("nan"))
    diverged = evaluate(model, samples)
    assert np.isnan(diverged["mae"]) and np.isnan(diverged["mse"])


def test_the_training_package_exports_are_what_its_docstring_says_and_load_on_use():
    """``from sasnet_core.training import train, finetune, ...`` gives the functions (never a
    submodule of the same name), and importing a light part (the CLI's defaults) loads no torch."""
    code = ("import sys\nimport sasnet_core.training.config\n"
            "assert 'torch' not in sys.modules, 'training.config pulled in torch'\n"
            "import sasnet_core.training as T\n"
            "import sasnet_core.training.finetuning, sasnet_core.training.loop\n"
            "from sasnet_core.training import finetune, train, evaluate\n"
            "assert callable(finetune) and callable(train) and callable(evaluate)\n"
            "missing = [n for n in T.__all__ if getattr(T, n, None) is None]\n"
            "assert not missing, missing\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
