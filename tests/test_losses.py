"""Losses of SASNet (Eqs. 1-4, 6) on hand-built maps whose answers are worked out on paper."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sasnet_core.training.losses import (
    IGNORE,
    conf_loss,
    confidence_labels,
    den_loss,
    pra_hard_mask,
    pra_loss,
    total_loss,
)


def _map(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)[None, None]  # (1,1,H,W)


def _mask_from(coords, h, w) -> torch.Tensor:
    m = torch.zeros(1, 1, h, w, dtype=torch.bool)
    for r, c in coords:
        m[0, 0, r, c] = True
    return m


def _reference_mask(err: torch.Tensor) -> torch.Tensor:
    """Plain recursion over regions, the rule as written in the docstring (for comparison only)."""
    h, w = err.shape
    mask = torch.zeros(h, w, dtype=torch.bool)

    def visit(r0, r1, c0, c1, parent_sign):
        s = float(err[r0:r1, c0:c1].double().sum())
        sign = (s > 0) - (s < 0)
        if sign == 0 or (parent_sign is not None and sign != parent_sign):
            return
        if r1 - r0 == 1 and c1 - c0 == 1:
            mask[r0, c0] = True
            return
        rr = [(r0, r0 + (r1 - r0 + 1) // 2), (r0 + (r1 - r0 + 1) // 2, r1)] if r1 - r0 > 1 else [(r0, r1)]
        cc = [(c0, c0 + (c1 - c0 + 1) // 2), (c0 + (c1 - c0 + 1) // 2, c1)] if c1 - c0 > 1 else [(c0, c1)]
        for a, b in rr:
            for c, d in cc:
                visit(a, b, c, d, sign)

    visit(0, h, 0, w, None)
    return mask


# ---------------------------------------------------------------------------------------------
# L_den
# ---------------------------------------------------------------------------------------------
def test_den_loss_sums_pixels_and_levels_and_averages_batch():
    gt = torch.zeros(2, 1, 2, 2)
    levels = torch.zeros(2, 5, 2, 2)
    levels[0, 0, 0, 0] = 2.0  # 4
    levels[0, 4, 1, 1] = -1.0  # 1
    levels[1, 2, 0, 1] = 3.0  # 9
    assert den_loss(levels, gt).item() == pytest.approx((4 + 1 + 9) / 2)


# ---------------------------------------------------------------------------------------------
# Confidence labels (Eq. 2) and L_conf
# ---------------------------------------------------------------------------------------------
def _levels_with_counts(counts, k=2):
    """One k x k patch per level; the whole count sits in the top-left pixel."""
    lv = torch.zeros(1, len(counts), k, k)
    lv[0, :, 0, 0] = torch.tensor(counts, dtype=torch.float32)
    return lv


def test_labels_closest_one_farthest_zero_others_ignored():
    gt = torch.zeros(1, 1, 2, 2)
    gt[0, 0, 1, 1] = 10.0  # placement inside the patch does not matter, only the count
    labels = confidence_labels(_levels_with_counts([9, 14, 10, 5, 11]), gt, k=2)  # errors 1 4 0 5 1
    assert labels.shape == (1, 5, 1, 1)
    assert labels.flatten().tolist() == [IGNORE, IGNORE, 1.0, 0.0, IGNORE]


def test_labels_ties_first_level_wins():
    gt = torch.zeros(1, 1, 2, 2)
    gt[0, 0, 0, 0] = 10.0
    labels = confidence_labels(_levels_with_counts([11, 9, 13, 7, 8]), gt, k=2)  # errors 1 1 3 3 2
    assert labels.flatten().tolist() == [1.0, IGNORE, 0.0, IGNORE, IGNORE]


def test_labels_all_levels_tied_patch_ignored():
    gt = torch.zeros(1, 1, 2, 2)
    gt[0, 0, 0, 0] = 10.0
    labels = confidence_labels(_levels_with_counts([8, 12, 8, 12, 8]), gt, k=2)  # all errors 2
    assert (labels == IGNORE).all()
    empty = confidence_labels(torch.zeros(1, 5, 4, 4), torch.zeros(1, 1, 4, 4), k=2)
    assert (empty == IGNORE).all()


def test_labels_patch_grid_and_remainder():
    torch.manual_seed(0)
    lv, gt = torch.rand(2, 5, 70, 100), torch.rand(2, 1, 70, 100)
    labels = confidence_labels(lv, gt, k=32)
    assert labels.shape == (2, 5, 2, 3) and labels.dtype == torch.float32
    # exactly one 1 and one 0 per informative patch
    assert ((labels == 1).sum(1) == 1).all() and ((labels == 0).sum(1) == 1).all()
    # matches counts computed the slow way for one patch
    err = (lv[1, :, 32:64, 64:96].sum((1, 2)) - gt[1, 0, 32:64, 64:96].sum()).abs()
    assert labels[1, err.argmin(), 1, 2] == 1 and labels[1, err.argmax(), 1, 2] == 0


def test_conf_loss_masked_mean_and_empty():
    logits = torch.tensor([0.0, 2.0, -1.0, 5.0]).view(1, 4, 1, 1).requires_grad_()
    labels = torch.tensor([1.0, 0.0, IGNORE, IGNORE]).view(1, 4, 1, 1)
    expected = (F.binary_cross_entropy(torch.sigmoid(torch.tensor([0.0])), torch.tensor([1.0]))
                + F.binary_cross_entropy(torch.sigmoid(torch.tensor([2.0])), torch.tensor([0.0]))) / 2
    loss = conf_loss(logits, labels)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    loss.backward()
    assert logits.grad[0, 2:].abs().sum() == 0 and logits.grad[0, :2].abs().sum() > 0

    logits.grad = None
    none = conf_loss(logits, torch.full_like(labels, IGNORE))
    assert none.item() == 0.0
    none.backward()  # still connected to the graph
    assert logits.grad.abs().sum() == 0


# ---------------------------------------------------------------------------------------------
# PRA hard pixels (Eq. 6)
# ---------------------------------------------------------------------------------------------
def test_hard_mask_2x2():
    # root sum +2: the over-estimated pixels are reached, the under-estimated and exact ones are not
    err = _map([[1, -1], [2, 0]])
    mask = pra_hard_mask(err, torch.zeros_like(err))
    assert torch.equal(mask, _mask_from([(0, 0), (1, 0)], 2, 2))
    # under-estimation is followed the same way
    assert torch.equal(pra_hard_mask(torch.zeros_like(err), err), mask)


def test_hard_mask_4x4_follows_only_same_sign_quadrants():
    err = _map([
        [3, -1, -2, -2],   # TL quadrant sum +2, TR quadrant sum -3
        [0, 0, 1, 0],
        [1, 1, 0, 0],      # BL quadrant sum +4, BR quadrant sum 0
        [1, 1, 0, 0],
    ])  # root +3: follow TL and BL, not TR (under) nor BR (exact)
    expected = _mask_from([(0, 0), (2, 0), (2, 1), (3, 0), (3, 1)], 4, 4)
    pred, gt = err + 5.0, torch.full_like(err, 5.0)  # only the difference matters
    assert torch.equal(pra_hard_mask(pred, gt), expected)
    assert torch.equal(pra_hard_mask(-err, torch.zeros_like(err)), expected)


def test_hard_mask_zero_error_region_stops():
    err = _map([[1, -1], [-1, 1]])  # root error exactly 0: nothing is hard
    assert not pra_hard_mask(err, torch.zeros_like(err)).any()
    empty = torch.zeros(3, 1, 8, 8)
    assert not pra_hard_mask(empty, empty).any()
    assert pra_loss(empty, empty).item() == 0.0


def test_hard_mask_odd_size_3x5():
    # rows split 3 -> [0,2) [2,3); cols 5 -> [0,3) [3,5) -> ... (first half takes ceil(n/2))
    err = _map([
        [1, 2, -5, 1, 1],
        [1, 0, 1, -1, 0],
        [-4, 1, 1, 1, 1],
    ])
    # root +1. rows0-1 x cols0-2 sums 0 (stops); rows0-1 x cols3-4 sums +1 (followed);
    # row2 x cols0-2 sums -2 (not reached); row2 x cols3-4 sums +2 (followed; a 1-row region only
    # splits along columns).
    expected = _mask_from([(0, 3), (0, 4), (2, 3), (2, 4)], 3, 5)
    assert torch.equal(pra_hard_mask(err, torch.zeros_like(err)), expected)


def test_hard_mask_single_pixel_and_lines():
    assert pra_hard_mask(_map([[2.0]]), _map([[0.0]])).all()
    assert not pra_hard_mask(_map([[2.0]]), _map([[2.0]])).any()
    row = _map([[1, -3, 2, 2, 1]])  # root +3; [1,-3,2]=0 stops, [2,1] +3 -> both hard
    assert torch.equal(pra_hard_mask(row, torch.zeros_like(row)), _mask_from([(0, 3), (0, 4)], 1, 5))


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (7, 2), (16, 16), (13, 31), (1, 9), (33, 17)])
def test_hard_mask_matches_plain_recursion(shape):
    g = torch.Generator().manual_seed(sum(shape))
    pred = torch.randn(3, 1, *shape, generator=g)
    gt = torch.randn(3, 1, *shape, generator=g)
    mask = pra_hard_mask(pred, gt)
    for b in range(3):
        assert torch.equal(mask[b, 0], _reference_mask(pred[b, 0] - gt[b, 0]))


def test_hard_mask_shape_3d_and_integer_ties():
    # integer-valued maps with many exact ties, compared with the recursion
    g = torch.Generator().manual_seed(1)
    pred = torch.randint(0, 3, (4, 12, 10), generator=g).float()
    gt = torch.randint(0, 3, (4, 12, 10), generator=g).float()
    mask = pra_hard_mask(pred, gt)
    assert mask.shape == (4, 12, 10) and mask.dtype == torch.bool
    for b in range(4):
        assert torch.equal(mask[b], _reference_mask(pred[b] - gt[b]))


def test_pra_loss_value_on_paper_example():
    err = _map([[1, -1], [2, 0]])  # squares 1 1 4 0; hard pixels carry 1 and 4
    zero = torch.zeros_like(err)
    assert pra_loss(err, zero, gamma=1.0).item() == pytest.approx(6 + 5)
    assert pra_loss(err, zero, gamma=2.0).item() == pytest.approx(6 + 10)
    assert pra_loss(err, zero, gamma=0.0).item() == pytest.approx(6)


# ---------------------------------------------------------------------------------------------
# Batch consistency and gradients
# ---------------------------------------------------------------------------------------------
def _fake_output(b=3, h=64, w=96, k=32, seed=0, requires_grad=True):
    g = torch.Generator().manual_seed(seed)
    levels = torch.rand(b, 5, h, w, generator=g).requires_grad_(requires_grad)
    logits = torch.randn(b, 5, h // k, w // k, generator=g).requires_grad_(requires_grad)
    gt = torch.rand(b, 1, h, w, generator=g)
    return {"level_densities": levels, "confidence_logits": logits}, gt


def _fused(out):
    w = torch.softmax(torch.sigmoid(out["confidence_logits"]), 1)
    w = F.interpolate(w, size=out["level_densities"].shape[-2:], mode="nearest")
    return (out["level_densities"] * w).sum(1, keepdim=True)


def test_batched_equals_per_sample():
    out, gt = _fake_output(requires_grad=False)
    out["density"] = _fused(out)
    lv, fused, logits = out["level_densities"], out["density"], out["confidence_logits"]
    labels = confidence_labels(lv, gt)
    mask = pra_hard_mask(fused, gt)
    per_den, per_pra, conf_sum, conf_n = [], [], 0.0, 0
    for i in range(3):
        s = slice(i, i + 1)
        assert torch.equal(confidence_labels(lv[s], gt[s]), labels[s])
        assert torch.equal(pra_hard_mask(fused[s], gt[s]), mask[s])
        per_den.append(den_loss(lv[s], gt[s]))
        per_pra.append(pra_loss(fused[s], gt[s]))
        n = int((labels[s] >= 0).sum())
        conf_sum += conf_loss(logits[s], labels[s]).item() * n
        conf_n += n
    assert den_loss(lv, gt).item() == pytest.approx(torch.stack(per_den).mean().item(), rel=1e-5)
    assert pra_loss(fused, gt).item() == pytest.approx(torch.stack(per_pra).mean().item(), rel=1e-5)
    assert conf_loss(logits, labels).item() == pytest.approx(conf_sum / conf_n, rel=1e-5)


def test_total_loss_gradients_flow_and_parts():
    out, gt = _fake_output()
    out["density"] = _fused(out)
    loss, parts = total_loss(out, gt, lam=10.0, gamma=1.0)
    assert set(parts) >= {"total", "den", "conf", "pra", "hard_fraction"}
    assert parts["total"] == pytest.approx(parts["den"] + 10 * parts["conf"] + parts["pra"], rel=1e-5)
    assert 0 < parts["hard_fraction"] < 1
    loss.backward()
    for t in (out["level_densities"], out["confidence_logits"]):
        assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0

    out2, gt2 = _fake_output()
    out2["density"] = _fused(out2)
    loss2, parts2 = total_loss(out2, gt2, use_pra=False)
    assert parts2["hard_fraction"] == 0.0 and parts2["pra"] < parts["pra"]  # plain L2 on fused
    loss2.backward()


def test_total_loss_rejects_mismatched_patch_grid():
    out, gt = _fake_output(requires_grad=False)
    out["density"] = _fused(out)
    with pytest.raises(ValueError, match="confidence_logits"):
        total_loss(out, gt, k=16)


def test_total_loss_with_tiny_model_backward():
    model_mod = pytest.importorskip("sasnet_core.model.sasnet")
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # shared CPU: avoid OpenMP threads spinning against other processes
    model = model_mod.sasnet(config=model_mod.SASNetConfig(width_mult=0.125))
    x = torch.randn(2, 3, 64, 64)
    gt = torch.rand(2, 1, 64, 64)
    try:
        loss, parts = total_loss(model(x), gt)
        loss.backward()
    finally:
        torch.set_num_threads(threads)
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert model.features1[0].weight.grad.abs().sum() > 0
    assert model.confidence_head1[1].conv.weight.grad.abs().sum() > 0
