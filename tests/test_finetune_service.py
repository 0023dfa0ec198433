"""The fine-tune service without Qt: the reviewed set read at start, staging removed however a run
ends, provenance naming the real data and the parent, registration, and the time budget's rule."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _gui_helpers import make_annotated_images, make_tiny_checkpoint

from sasnet_core.annotations.store import read_annotation, write_annotation
from sasnet_core.training.finetuning import finetune_config
from sasnet_core.training.service import (
    FineTuneRequest,
    FineTuneRun,
    training_precision,
)
from sasnet_core.training.staging import staging_root
from sasnet_core.weights.registry import ModelRegistry

TINY_RUN = dict(steps=2, images_per_step=2, crops_per_image=1, crop_size=32, workers=0,
                device="cpu", progress=False)


def _staging_left() -> list[Path]:
    return list(staging_root().iterdir()) if staging_root().exists() else []


def _run(weights, images, **cfg) -> FineTuneRun:
    return FineTuneRun(FineTuneRequest(weights=weights, images=images,
                                       cfg=finetune_config(**{**TINY_RUN, **cfg})))


def test_reviewed_set_is_read_when_the_run_starts_and_provenance_is_true(studio_home, tmp_path):
    parent = make_tiny_checkpoint(tmp_path / "tiny.pth")
    ModelRegistry().add("tiny", parent)
    images = make_annotated_images(tmp_path / "street", n=3, reviewed=[True, True, False])
    run = _run("tiny", images, holdout=0.34)
    late = read_annotation(images[2])  # reviewed after the run was asked for, before it starts
    late.reviewed = True
    write_annotation(late, images[2])

    result = run.run()
    assert result.status == "completed" and result.step == 2
    assert len(run.reviewed) == 3 and not _staging_left()
    path = run.model_path
    assert path is not None and path.parent == studio_home / "data" / "models"
    assert path.name.startswith("tiny-ft-")

    from sasnet_core.weights.checkpoint import read_metadata

    _kind, meta = read_metadata(path)
    assert meta["finetune_images"] + meta["holdout_images"] == 3
    assert meta["data_folder"] == meta["data"] == str(images[0].parent)  # never the staging
    assert meta["parent_name"] == "tiny" and meta["parent"] == str(parent.resolve())
    assert meta["name"] == path.stem and meta["kind"] == "finetuned"

    entry = run.register(make_default=True)
    assert entry.name == path.stem and ModelRegistry().default().name == entry.name
    assert [e.name for e in ModelRegistry().entries()] == sorted(["tiny", entry.name])


def test_a_parent_used_from_a_file_is_registered_beside_the_new_model(studio_home, tmp_path):
    parent = make_tiny_checkpoint(tmp_path / "street model.pth")
    images = make_annotated_images(tmp_path / "data", n=1)
    run = _run(str(parent), images)
    run.run()
    from sasnet_core.weights.checkpoint import read_metadata

    assert read_metadata(run.model_path)[1]["parent_name"] == "street model"
    entry = run.register(make_default=False)
    names = {e.name: e for e in ModelRegistry().entries()}
    assert set(names) == {"street-model", entry.name}
    assert names["street-model"].path == parent.resolve()


def test_staging_is_removed_after_failure_and_after_a_cancel(studio_home, tmp_path):
    from sasnet_core.training.signals import StopRequest
    from sasnet_core.util.errors import SASNetError

    parent = make_tiny_checkpoint(tmp_path / "tiny.pth")
    images = make_annotated_images(tmp_path / "data", n=2)

    damaged = tmp_path / "damaged.pth"
    damaged.write_bytes(b"not a checkpoint")
    failing = _run(str(damaged), images)
    with pytest.raises(SASNetError, match="damaged.pth"):
        failing.run()
    assert not _staging_left() and failing.model_path is None

    cancelled = _run(str(parent), images, steps=1000)
    stop = StopRequest()
    stop.request()  # cancelled before the first step: nothing learnt, nothing kept
    result = cancelled.run(stop=stop)
    assert result.status == "stopped" and result.step == 0
    assert cancelled.model_path is None and not cancelled.out.exists()
    assert not _staging_left()
    assert not list(cancelled.out.parent.glob(".*.tmp"))


def test_nothing_reviewed_is_refused_before_anything_is_written(studio_home, tmp_path):
    from sasnet_core.util.errors import DatasetLayoutError

    parent = make_tiny_checkpoint(tmp_path / "tiny.pth")
    images = make_annotated_images(tmp_path / "todo", n=2, reviewed=False)
    run = _run(str(parent), images)
    with pytest.raises(DatasetLayoutError, match="no reviewed images"):
        run.prepare()
    assert len(run.reviewed.not_reviewed) == 2 and not _staging_left()


def test_finish_removes_the_half_save_of_a_killed_trainer(studio_home, tmp_path):
    parent = make_tiny_checkpoint(tmp_path / "tiny.pth")
    run = _run(str(parent), make_annotated_images(tmp_path / "data", n=1))
    run.prepare()
    killed = textwrap.dedent(f"""
        import os
        from sasnet_core.io.atomic import atomic_path
        with atomic_path({str(run.out)!r}) as tmp:
            tmp.write_bytes(b"half a model")
            os._exit(0)  # killed in the middle of the save
    """)
    subprocess.run([sys.executable, "-c", killed], check=True)
    assert list(run.out.parent.glob(".*.tmp"))
    assert run.finish(None) is None
    assert not list(run.out.parent.glob(".*.tmp")) and not _staging_left()


def test_the_service_runs_without_qt(studio_home, tmp_path):
    parent = make_tiny_checkpoint(tmp_path / "tiny.pth")
    images = make_annotated_images(tmp_path / "data", n=2)
    script = textwrap.dedent(f"""
        import sys
        from sasnet_core.training.finetuning import finetune_config
        from sasnet_core.training.service import FineTuneRequest, FineTuneRun, training_precision
        run = FineTuneRun(FineTuneRequest(weights={str(parent)!r}, images={[str(p) for p in images]!r},
                                          cfg=finetune_config(**{TINY_RUN!r})))
        result = run.run()
        assert result.status == "completed", result.status
        assert run.model_path.is_file()
        assert not any(m.split(".")[0] in ("PySide6", "pyqtgraph", "sasnet_gui") for m in sys.modules)
        print("ok")
    """)
    env = {**os.environ, "SASNET_STUDIO_HOME": str(studio_home)}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                         timeout=300)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]


def test_command_passes_device_precision_and_budget_to_the_child(studio_home, tmp_path):
    parent = make_tiny_checkpoint(tmp_path / "tiny.pth")
    run = FineTuneRun(FineTuneRequest(
        weights=str(parent), images=make_annotated_images(tmp_path / "data", n=2),
        # 90 minutes: above this machine's minimum (bf16 on a CPU without it is slow), so it starts
        cfg=finetune_config(steps=7, max_minutes=90, device="cpu", precision="bf16",
                            freeze_encoder=True),
        started_at=1234.5))
    run.prepare()
    try:
        argv = run.command()
        from sasnet_core.cli import build_parser

        args = build_parser().parse_args(argv[2:])  # after "-m sasnet_core"
        assert (args.command, args.device, args.precision) == ("finetune", "cpu", "bf16")
        assert (args.steps, args.max_minutes, args.budget_from) == (7, 90, 1234.5)
        assert args.freeze_encoder and Path(args.data) == run.staging
        assert args.bn_stats == "keep"  # the app's fine-tuning keeps the BatchNorm statistics
        assert Path(args.stop_file).parent == run.staging and Path(args.out) == run.out
    finally:
        run.finish(None)
    assert not _staging_left()
    # the app counts in fp16 too; training has no fp16 and takes automatic bf16 on a GPU instead
    assert [training_precision(p) for p in ("fp32", "bf16", "fp16")] == ["fp32", "bf16", "auto"]


@pytest.mark.parametrize("freeze, stages", [(dict(freeze_stages=3), 3), (dict(freeze_encoder=True), 5),
                                            (dict(), 0)])
def test_command_passes_the_frozen_encoder_stages_to_the_child(studio_home, tmp_path, freeze, stages):
    parent = make_tiny_checkpoint(tmp_path / "tiny.pth")
    run = _run(str(parent), make_annotated_images(tmp_path / "data", n=2), **freeze)
    run.prepare()
    try:
        from sasnet_core.cli import build_parser
        from sasnet_core.cli.train_cmd import config_from_args

        args = build_parser().parse_args(run.command()[2:])  # after "-m sasnet_core"
        assert config_from_args(args).freeze_stages == run.cfg.freeze_stages == stages
    finally:
        run.finish(None)


@pytest.mark.parametrize("step_s", [2.0, 15.0])  # many short steps, or a few long ones
def test_time_budget_stops_in_time_for_the_final_evaluation_and_save(monkeypatch, step_s):
    """The rule, on a clock the test sets: stop once one more step, the final evaluation (as long
    as the one before training) and the save would not fit."""
    from sasnet_core.training import budget as B

    now = [1000.0]
    monkeypatch.setattr(B.time, "time", lambda: now[0])
    tb = B.TimeBudget(None, minutes=1.0, started_at=1000.0, save_bytes=int(B.SAVE_BYTES_PER_S))
    now[0] = 1005.0
    tb.observe("start", {})
    now[0] = 1015.0
    tb.observe("val", {"phase": "before"})  # 10 s to score the held-out images
    assert tb.eval_s == 10.0 and tb.save_s == 1.0 + B.EXIT_S
    assert tb.reserve_s() == 10.0 * B.EVAL_MARGIN + 1.0 + B.EXIT_S
    polls = []
    while not tb.requested:
        polls.append(now[0])
        now[0] += step_s
    # deadline 1060: a step may start only while it, the final evaluation and the save fit
    assert polls[-1] + step_s + tb.reserve_s() < 1060 <= now[0] + step_s + tb.reserve_s()
    assert len(polls) > (1 if step_s == 15.0 else 10)  # the third poll already knows 2 step times
    assert tb.reason == B.TIME_LIMIT
    assert not B.TimeBudget(None, minutes=None).requested  # a steps budget: no clock


def test_time_budget_guesses_the_first_step_from_the_evaluation(monkeypatch):
    from sasnet_core.training import budget as B

    now = [1005.0]
    monkeypatch.setattr(B.time, "time", lambda: now[0])
    ratio = B.step_work_ratio(8, 4, 128, eval_pixels=2 * 384 * 512)  # 3 x 524288 / 393216
    assert ratio == pytest.approx(4.0)
    tb = B.TimeBudget(None, minutes=1.0, started_at=1000.0, step_per_eval=ratio)
    tb.observe("start", {})
    now[0] = 1015.0
    tb.observe("val", {"phase": "before"})
    assert tb.step_s() == pytest.approx(40.0)
    assert tb.requested  # 1015 + 40 + 12 + 1 > 1060: not even one step fits, so none starts


def test_staging_of_a_killed_app_is_removed_by_the_next_run(studio_home, tmp_path):
    import os

    from sasnet_core.training.staging import read_reviewed_set, stage

    images = make_annotated_images(tmp_path / "data", n=1)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    staged = stage(read_reviewed_set(images))
    # as a killed app would have left it: the stage names its stager, a process that is gone
    left = staged.with_name(staged.name.replace(f"-{os.getpid()}-", f"-{int(dead.stdout)}-"))
    assert left != staged
    staged.rename(left)
    mine = stage(read_reviewed_set(images))
    assert not left.exists() and mine.exists()
    assert stage(read_reviewed_set(images)).exists() and mine.exists()  # a live run's is kept


def test_a_minutes_budget_below_the_minimum_is_refused_before_anything_is_staged(studio_home, tmp_path):
    from sasnet_core.training.budget import BudgetTooSmallError

    parent = make_tiny_checkpoint(tmp_path / "tiny.pth")
    images = make_annotated_images(tmp_path / "street", n=3)
    run = _run(str(parent), images, max_minutes=0.01, holdout=0.34)
    with pytest.raises(BudgetTooSmallError) as refused:
        run.prepare()
    minimum = refused.value.minimum
    # every part of the run is in it: start, both evaluations of the held-out image, a step, the save
    assert minimum.startup_s > 0 and minimum.eval_s > 0 and minimum.step_s > 0 and minimum.save_s > 0
    assert minimum.minutes > 0.01 and not minimum.allows(0.01) and minimum.allows(minimum.minutes)
    assert f"at least {minimum.minutes:g} minutes" in str(refused.value)
    assert "held-out MAE before and after" in str(refused.value)
    assert run.staging is None and not _staging_left() and not (studio_home / "data" / "models").exists()
    # the same measure once more costs nothing: it is remembered for this model and device
    from sasnet_core.training.service import estimate_minimum

    assert estimate_minimum(parent, run.reviewed, run.request.cfg) == minimum


def test_the_new_models_description_names_its_images_as_they_are(studio_home, tmp_path):
    from sasnet_core.weights.checkpoint import read_metadata
    from sasnet_core.weights.provenance import provenance

    parent = make_tiny_checkpoint(tmp_path / "tiny.pth")
    day = make_annotated_images(tmp_path / "plaza" / "day", n=2)
    night = make_annotated_images(tmp_path / "plaza" / "night", n=2, seed=3)  # the same file names
    run = _run(str(parent), day + night, holdout=0.25, steps=1)
    run.run()
    _kind, meta = read_metadata(run.model_path)
    assert meta["data_folder"] == str(tmp_path / "plaza")
    assert meta["image_folders"] == ["day", "night"]
    held = meta["holdout_files"][0]
    assert held.split("/")[0] in ("day", "night") and (tmp_path / "plaza" / held).is_file()  # not ambiguous
    assert provenance(meta).trained_on == "3 images (plaza/day, plaza/night; 1 more held out)"
    assert "; 1 step; held-out MAE" in provenance(meta).describe()  # not "1 steps"
    run.discard()  # nobody keeps it: the file goes, nothing is left in the models folder
    assert not list((studio_home / "data" / "models").glob("*.pth"))


def test_a_registration_racing_the_discard_of_an_unkept_model_never_names_a_missing_file(
        studio_home, tmp_path, monkeypatch):
    """Discarding the new model while the same file is being registered (Keep clicked in another
    window): the check and the deletion happen under the registry's lock, so the registration
    either keeps its file or is refused in words, never left naming a deleted file."""
    import threading

    from sasnet_core.util.errors import ModelRegistryError

    parent = make_tiny_checkpoint(tmp_path / "tiny.pth")
    run = _run(str(parent), make_annotated_images(tmp_path / "street", n=2), holdout=0.5, steps=1)
    run.run()
    new_model = run.model_path
    outcome = []

    def register_elsewhere():
        try:
            outcome.append(ModelRegistry().add("street-kept", new_model))
        except ModelRegistryError as exc:
            outcome.append(exc)

    real_read = ModelRegistry._read
    racer = threading.Thread(target=register_elsewhere)

    def read_then_race(self):  # the discard has read the registry: now the other registration runs
        data = real_read(self)
        if not racer.is_alive() and racer.ident is None:
            racer.start()
            racer.join(timeout=2)  # done, unless the registry is locked until the discard ends
        return data

    monkeypatch.setattr(ModelRegistry, "_read", read_then_race)
    run.discard()
    racer.join(timeout=30)
    assert not racer.is_alive() and len(outcome) == 1
    registered = ModelRegistry().get("street-kept")
    if registered is not None:
        assert registered.path.is_file() and run.model_path == new_model
    else:
        assert not new_model.exists()
        assert "deleted while it was being registered" in str(outcome[0]) and str(new_model) in str(outcome[0])
    for entry in ModelRegistry().entries():
        assert entry.path.is_file(), entry


def test_the_finetune_command_refuses_a_budget_below_the_minimum_before_writing_anything(
        studio_home, tmp_path, capsys):
    """``sasnet finetune --max-minutes`` keeps the app's rule: a budget below this model's minimum
    here is refused in one line naming the minimum and --steps; no model, log or staging is made."""
    import re

    from sasnet_core.cli import main
    from sasnet_core.training.budget import BudgetTooSmallError

    parent = make_tiny_checkpoint(tmp_path / "tiny.pth")
    images = make_annotated_images(tmp_path / "street", n=3)
    out, log = tmp_path / "models" / "street.pth", tmp_path / "progress.jsonl"
    code = main(["finetune", str(parent), str(tmp_path / "street"), "--out", str(out), "--max-minutes", "0.01",
                 "--holdout", "0.34", "--device", "cpu", "--log-json", str(log), "--no-progress"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("sasnet finetune: error: a budget of 0.01 min is too short for this model")
    assert lines[0].endswith("or leave out --max-minutes and set the run's length with --steps")
    minimum = float(re.search(r"give it at least ([\d.]+) minutes", lines[0]).group(1))
    assert not out.exists() and not log.exists() and not _staging_left()
    # the minimum the app's panel would have named for the same images and settings
    app_run = FineTuneRun(FineTuneRequest(weights=str(parent), images=images,
                                          cfg=finetune_config(max_minutes=0.01, holdout=0.34, device="cpu")))
    with pytest.raises(BudgetTooSmallError) as refused:
        app_run.prepare()
    assert minimum == refused.value.minimum.minutes > 0.01
