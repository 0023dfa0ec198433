"""Training on a partly reviewed image learns from its reviewed cells alone.

An image a person has checked only cell by cell in review mode is right inside those cells and
unknown elsewhere (points missing or unchecked). Its loss must ignore the rest, not read it as
"nobody here"; a wholly reviewed image keeps training whole.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sasnet_core.annotations.annotation import Annotation
from sasnet_core.annotations.store import write_annotation
from sasnet_core.io.imageio import write_image
from sasnet_core.training.crops import TrainCrops
from sasnet_core.training.data import FullImageDataset, load_samples
from sasnet_core.training.losses import UNKNOWN, total_loss
from sasnet_core.training.staging import read_reviewed_set
from sasnet_core.util.errors import DatasetLayoutError

H, W, CELL = 256, 384, 128  # a 2 x 3 grid of review cells


def _outputs(seed: int, h: int = 64, w: int = 64):
    g = torch.Generator().manual_seed(seed)
    levels = torch.rand(2, 5, h, w, generator=g).requires_grad_(True)
    logits = torch.randn(2, 5, h // 32, w // 32, generator=g).requires_grad_(True)
    fused = levels.mean(1, keepdim=True)
    return {"level_densities": levels, "confidence_logits": logits, "density": fused}


def test_loss_ignores_unknown_pixels_and_learns_from_known_ones():
    known = torch.zeros(2, 1, 64, 64, dtype=torch.bool)
    known[:, :, :32, :32] = True  # one 32 x 32 patch of each crop is reviewed
    g = torch.Generator().manual_seed(1)
    target = torch.rand(2, 1, 64, 64, generator=g)
    masked = torch.where(known, target, torch.full_like(target, UNKNOWN))
    other = torch.where(known, target, target * 5 + 3)  # different heads outside the cells

    out = _outputs(0)
    loss, parts = total_loss(out, masked)
    loss.backward()
    grad = out["level_densities"].grad
    assert torch.isfinite(loss) and loss > 0
    assert grad[:, :, :32, :32].abs().sum() > 0  # the reviewed patch teaches
    assert torch.count_nonzero(grad.expand(2, 5, 64, 64) * ~known) == 0  # the rest does not
    # Confidence: only the reviewed patch is labelled, the three unknown patches tie and are left out.
    assert parts["labelled_fraction"] <= 2 / 5 / 4 + 1e-6

    # Whatever is outside the cells (other heads, other predictions) changes nothing.
    out2 = _outputs(0)
    with torch.no_grad():
        out2["level_densities"][~known.expand(2, 5, 64, 64)] += 7.0
    out2["density"] = out2["level_densities"].mean(1, keepdim=True)
    assert total_loss(out2, masked)[0].item() == pytest.approx(loss.item(), rel=1e-6)
    # ... while the same target with those pixels known does count them.
    assert total_loss(_outputs(0), other)[0].item() > loss.item() * 2


def _write_folder(tmp_path, cells_of: dict):
    """Images with 1 head at the centre of every review cell; annotation per image: ``cells_of``
    maps the image name to "reviewed" (whole), a set of reviewed cells, or None (not reviewed)."""
    rng = np.random.default_rng(0)
    centres = [((k + 0.5) * CELL, (r + 0.5) * CELL) for r in range(H // CELL) for k in range(W // CELL)]
    for name, state in cells_of.items():
        image = tmp_path / f"{name}.png"
        write_image(image, rng.integers(0, 255, (H, W, 3), dtype=np.uint8))
        ann = Annotation(str(image), (W, H), np.array(centres), reviewed=state == "reviewed",
                         reviewed_cells=state if isinstance(state, set) else set(),
                         review_cell_px=CELL)
        write_annotation(ann)


def test_partly_reviewed_image_trains_in_its_cells_and_validates_on_them(tmp_path):
    _write_folder(tmp_path, {"whole": "reviewed", "part": {(0, 1), (1, 2)}, "none": None})
    samples = {s.image_path.rsplit("/", 1)[-1]: s for s in load_samples(tmp_path)}
    assert sorted(samples) == ["part.png", "whole.png"]  # an unchecked image is still left out
    whole, part = samples["whole.png"], samples["part.png"]
    assert whole.count == 6 and part.count == 2  # the true count of a part: heads in its cells

    torch.manual_seed(0)
    crops = TrainCrops([whole, part], crop=64, crops_per_image=16, flip=False)
    target = crops.target(1, (H, W))
    cells = np.zeros((H, W), bool)
    cells[0:128, 128:256] = cells[128:256, 256:384] = True
    assert (target[~cells] == UNKNOWN).all() and (target[cells] >= 0).all()
    assert (crops.target(0, (H, W)) >= 0).all()
    _, tgts = crops[1]
    known = (tgts.numpy() >= 0).reshape(16, -1).any(1)
    assert known.all()  # every crop of the partly reviewed image holds some reviewed pixels

    image, count, mask = FullImageDataset([part])[0]
    assert count == 2 and mask is not None and np.array_equal(mask.numpy(), cells)
    assert FullImageDataset([whole])[0][2] is None

    # Taking every annotation as it is uses the partly reviewed image whole, as before.
    everything = load_samples(tmp_path, all_annotated=True)
    assert len(everything) == 3 and all(not s.reviewed_cells for s in everything)
    # The app's reviewed set offers the partly reviewed image for fine-tuning too.
    offered = read_reviewed_set([tmp_path])
    assert len(offered) == 2 and len(offered.not_reviewed) == 1
    # and says what it learns from: the whole image's 6 heads and the 2 in the reviewed cells
    assert offered.describe().startswith("2 reviewed images, 1 of them in part (8 head points)")
    assert "no head point" not in offered.describe()
    write_annotation(Annotation(str(tmp_path / "none.png"), (W, H), reviewed=True))  # reviewed, no points
    assert "1 of them with no head point, taught as empty" in read_reviewed_set([tmp_path]).describe()


def test_points_in_cells_agree_with_the_cell_pixels():
    ann = Annotation("x.png", (W, H), np.array([[127.9, 10.0], [128.0, 10.0], [300.0, 200.0],
                                                [-1.0, 5.0]]),
                     reviewed_cells={(0, 1), (1, 2)}, review_cell_px=CELL)
    inside = ann.in_reviewed_cells()
    mask = ann.reviewed_cells_mask((H, W))
    assert inside.tolist() == [False, True, True, False]
    for (x, y), flag in zip(ann.points[:3], inside[:3]):
        assert mask[int(y), int(x)] == flag


def test_reviewed_cells_that_miss_the_image_are_named_not_learnt_from_silently(tmp_path):
    _write_folder(tmp_path, {"part": {(7, 9)}})  # a file written for a larger image
    with pytest.raises(DatasetLayoutError, match=r"part\.png.*reviewed cells all lie outside the 384 x 256"):
        load_samples(tmp_path)
