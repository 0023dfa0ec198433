"""SASNet training losses (Song et al., AAAI 2021, Eqs. 1-4 and 6).

All functions are batched and differentiable (except the label / hard-mask builders, which are
targets and run without gradient). Densities are in model units (people x count_scale, 1000 in
the released code), shaped (B, C, H, W).

Normalisation, one rule for every squared-error term: sum over pixels (and over levels for L_den),
mean over the batch. This is the "sum of squares per image" of the released preprocessing and of
CSRNet-style training, made independent of the batch size so that lambda and gamma keep their
meaning when the batch changes (the paper's batch is 8 images x 4 crops = 32). The BCE term is a
mean over labelled patches, as Eq. 4 averages over them.

    L = L_den + lambda * L_conf + L_pra          (lambda = 10, gamma = 1 in the paper)
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import torch
import torch.nn.functional as F

from sasnet_core.model.config import PATCH_SIZE

__all__ = [
    "den_loss",
    "confidence_labels",
    "conf_loss",
    "pra_hard_mask",
    "pra_loss",
    "total_loss",
    "IGNORE",
    "UNKNOWN",
]

IGNORE = -1.0  # label value of a patch/level pair that L_conf leaves out
# Density target of a pixel nobody has checked (outside the reviewed cells of a partly reviewed
# image): ``total_loss`` leaves it out rather than learning "nobody here". A density is never
# negative, and a NaN target still means damage (the step refuses a NaN loss).
UNKNOWN = -1.0


def _as_b1hw(x: torch.Tensor, name: str) -> torch.Tensor:
    """Accept (B,1,H,W) or (B,H,W); return (B,1,H,W)."""
    if x.dim() == 3:
        return x.unsqueeze(1)
    if x.dim() != 4 or x.shape[1] != 1:
        raise ValueError(f"{name} must be (B,1,H,W) or (B,H,W), got {tuple(x.shape)}")
    return x


# ---------------------------------------------------------------------------------------------
# Eq. 1: density loss on the five per-level maps
# ---------------------------------------------------------------------------------------------
def den_loss(level_densities: torch.Tensor, gt_density: torch.Tensor) -> torch.Tensor:
    """L_den = sum_i ||D_i - D_gt||^2: summed over levels and pixels, averaged over the batch.

    level_densities: (B, L, H, W) (L = 5, P1..P5); gt_density: (B, 1, H, W) -> scalar.
    """
    gt = _as_b1hw(gt_density, "gt_density")
    if level_densities.dim() != 4 or level_densities.shape[-2:] != gt.shape[-2:]:
        raise ValueError(
            f"level_densities {tuple(level_densities.shape)} and gt_density {tuple(gt.shape)} "
            "must be (B,L,H,W) and (B,1,H,W) with the same H, W"
        )
    diff = level_densities - gt  # broadcast over the L levels
    return diff.square().sum(dim=(1, 2, 3)).mean()


# ---------------------------------------------------------------------------------------------
# Eq. 2: confidence labels from per-patch counting errors
# ---------------------------------------------------------------------------------------------
def _patch_counts(density: torch.Tensor, k: int) -> torch.Tensor:
    """Sum over k x k patches: (B, C, H, W) -> (B, C, H//k, W//k). A remainder strip that does not
    fill a whole patch is dropped, which matches the confidence head (floor pooling)."""
    b, c, h, w = density.shape
    hp, wp = h // k, w // k
    d = density[:, :, : hp * k, : wp * k]
    return d.reshape(b, c, hp, k, wp, k).sum(dim=(3, 5))


@torch.no_grad()
def confidence_labels(level_densities: torch.Tensor, gt_density: torch.Tensor, k: int = PATCH_SIZE
                      ) -> torch.Tensor:
    """Per k x k patch: 1 for the level whose count is closest to the ground truth, 0 for the
    farthest, IGNORE (-1) for the others.

    (B, L, H, W), (B, 1, H, W) -> (B, L, H//k, W//k) float, same dtype as level_densities.

    Ties, compared exactly (no tolerance): the first level in P1..P5 order wins both "closest" and
    "farthest" (torch.argmin / argmax return the first extremum). If every level has the same
    error, the patch carries no information about which level to choose and is ignored entirely.
    """
    gt = _as_b1hw(gt_density, "gt_density")
    if level_densities.shape[-2] < k or level_densities.shape[-1] < k:
        raise ValueError(f"maps of {tuple(level_densities.shape[-2:])} hold no {k}x{k} patch")
    err = (_patch_counts(level_densities.detach().float(), k)
           - _patch_counts(gt.detach().float(), k)).abs()  # (B, L, h, w)
    closest = err.argmin(dim=1, keepdim=True)
    farthest = err.argmax(dim=1, keepdim=True)
    informative = (err.amax(dim=1, keepdim=True) > err.amin(dim=1, keepdim=True))
    labels = torch.full_like(err, IGNORE)
    labels.scatter_(1, closest, 1.0)
    labels.scatter_(1, farthest, 0.0)  # distinct from `closest` whenever the patch is informative
    labels = torch.where(informative, labels, torch.full_like(labels, IGNORE))
    return labels.to(level_densities.dtype)


# ---------------------------------------------------------------------------------------------
# Eqs. 3-4: masked binary cross-entropy on the confidence logits
# ---------------------------------------------------------------------------------------------
def conf_loss(confidence_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """BCE(sigmoid(logits), labels) averaged over labelled entries (labels >= 0); 0 when none.

    Computed from logits (binary_cross_entropy_with_logits), which is the stable form of
    BCE(sigmoid(x)). Returns a graph-connected zero when nothing is labelled, so that
    ``loss.backward()`` still works.
    """
    if confidence_logits.shape != labels.shape:
        raise ValueError(f"confidence_logits {tuple(confidence_logits.shape)} and labels "
                         f"{tuple(labels.shape)} differ; build labels with the model's k")
    valid = labels >= 0
    n = valid.sum()
    per = F.binary_cross_entropy_with_logits(
        confidence_logits.float(), labels.float().clamp(min=0.0), reduction="none")
    total = (per * valid).sum()
    return total / n.clamp(min=1)  # total is 0 (and graph-connected) when n == 0


# ---------------------------------------------------------------------------------------------
# Eq. 6: pyramid region awareness (PRA) loss
# ---------------------------------------------------------------------------------------------
@lru_cache(maxsize=64)
def _split_plan(n: int, depth: int) -> tuple[tuple[tuple[int, ...], tuple[int, ...],
                                                    tuple[int, ...]], ...]:
    """Interval tree of one axis of length n, split `depth` times.

    An interval of length m > 1 splits at start + ceil(m/2) (the first child takes the larger
    half); an interval of length 1 is kept whole (it becomes its own only child). Returns, for each
    depth 0..depth, (starts, ends, parent) where parent[i] is the index at the previous depth of
    interval i's parent (parent is empty at depth 0). After ceil(log2 n) splits every interval is a
    single index, in order.
    """
    starts, ends = [0], [n]
    plan = [((0,), (n,), ())]
    for _ in range(depth):
        ns, ne, par = [], [], []
        for p, (s, e) in enumerate(zip(starts, ends)):
            if e - s > 1:
                mid = s + (e - s + 1) // 2
                ns += [s, mid]
                ne += [mid, e]
                par += [p, p]
            else:
                ns.append(s)
                ne.append(e)
                par.append(p)
        starts, ends = ns, ne
        plan.append((tuple(starts), tuple(ends), tuple(par)))
    return tuple(plan)


def _levels(n: int) -> int:
    return max(0, (n - 1).bit_length())  # ceil(log2 n) splits bring n down to 1


@torch.no_grad()
def pra_hard_mask(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Hard pixels of the pyramid region awareness loss, (B,1,H,W) bool (or (B,H,W) for 3-D input).

    Rule (Eq. 6 and Sec. "PRA loss"): start from the whole map; a region is *followed* when it is
    reached and its error sum(D - D_gt) is non-zero. A followed region is split into four (two
    along each axis; a side of length 1 is not split, so 2 or 1 children), and a child is reached
    when its error has the same sign as its parent's (over-estimated children of an over-estimated
    region, under-estimated children of an under-estimated one). Hard pixels are the followed
    single-pixel regions at the bottom of the pyramid.

    - A region whose error is exactly 0 stops: neither it nor anything under it is hard (so an
      empty map with an empty prediction has no hard pixel, and neither does a perfect one).
    - Sides that are not powers of two split at ceil(m/2) (first half larger); both axes are split
      at every depth until they reach 1, so a 3x5 map uses depths 0..3, its rows reaching 1 at
      depth 2 and then staying whole.

    Vectorised: per-depth region sums come from a float64 integral image indexed with cached
    interval tables, and the reached mask is propagated down with index maps (gather by parent).
    No Python work per region in the hot path; the per-axis tables are built once per size.
    """
    squeeze = pred.dim() == 3
    p = _as_b1hw(pred, "pred")
    g = _as_b1hw(gt, "gt")
    if p.shape != g.shape:
        raise ValueError(f"pred {tuple(p.shape)} and gt {tuple(g.shape)} differ")
    b, _, h, w = p.shape
    dev = p.device
    # float64: signs of near-balanced regions must not flip because of summation order.
    err = (p.detach().double() - g.detach().double())[:, 0]  # (B, H, W)
    integral = F.pad(err.cumsum(1).cumsum(2), (1, 0, 1, 0))  # (B, H+1, W+1), I[i,j] = sum err[:i,:j]

    depth = max(_levels(h), _levels(w))
    rows, cols = _split_plan(h, depth), _split_plan(w, depth)

    def region_sign(d: int) -> torch.Tensor:
        rs, re, _ = rows[d]
        cs, ce, _ = cols[d]
        rs, re = torch.tensor(rs, device=dev), torch.tensor(re, device=dev)
        cs, ce = torch.tensor(cs, device=dev), torch.tensor(ce, device=dev)
        lo_r, hi_r = integral.index_select(1, rs), integral.index_select(1, re)
        s = (hi_r.index_select(2, ce) - lo_r.index_select(2, ce)
             - hi_r.index_select(2, cs) + lo_r.index_select(2, cs))
        return torch.sign(s).to(torch.int8)  # (B, R_rows(d), R_cols(d))

    sign = region_sign(0)
    followed = sign != 0  # the root is always reached
    for d in range(1, depth + 1):
        child = region_sign(d)
        pr = torch.tensor(rows[d][2], device=dev)
        pc = torch.tensor(cols[d][2], device=dev)
        parent_sign = sign.index_select(1, pr).index_select(2, pc)
        parent_followed = followed.index_select(1, pr).index_select(2, pc)
        followed = parent_followed & (child == parent_sign)  # parent_sign != 0 when followed
        sign = child
    mask = followed.unsqueeze(1)  # at full depth the regions are the pixels, in order
    return mask[:, 0] if squeeze else mask


def pra_loss(pred: torch.Tensor, gt: torch.Tensor, gamma: float = 1.0,
             hard_mask: torch.Tensor | None = None) -> torch.Tensor:
    """L_pra = ||D - D_gt||^2 + gamma * ||(D - D_gt) on hard pixels||^2.

    Summed over pixels, averaged over the batch (see the module note). `pred`, `gt`: (B,1,H,W) or
    (B,H,W). `hard_mask` may be passed when already computed (it carries no gradient anyway).
    """
    p = _as_b1hw(pred, "pred")
    g = _as_b1hw(gt, "gt")
    if hard_mask is None:
        hard_mask = pra_hard_mask(p, g)
    hard_mask = _as_b1hw(hard_mask, "hard_mask")
    sq = (p - g).square()
    weight = 1.0 + gamma * hard_mask.to(sq.dtype)
    return (sq * weight).sum(dim=(1, 2, 3)).mean()


# ---------------------------------------------------------------------------------------------
# Eq. 7: the whole objective
# ---------------------------------------------------------------------------------------------
def _field(output: Any, name: str) -> torch.Tensor:
    if isinstance(output, dict):
        return output[name]
    return getattr(output, name)


def total_loss(output: Any, gt_density: torch.Tensor, lam: float = 10.0, gamma: float = 1.0,
               use_pra: bool = True, k: int = PATCH_SIZE) -> tuple[torch.Tensor, dict[str, float]]:
    """L = L_den + lam * L_conf + L_pra, L_pra on the fused density.

    `output`: a SASNetOutput (or a dict) with `density` (B,1,H,W), `level_densities` (B,5,H,W)
    and `confidence_logits` (B,5,H//k,W//k). With ``use_pra=False`` (the paper's "w/o PRA"
    ablation) the fused density keeps the plain Euclidean term ||D - D_gt||^2, i.e. gamma = 0, and
    no hard mask is built.

    Target pixels equal to ``UNKNOWN`` are left out of every term.

    Returns (loss, parts) where parts holds plain floats: total, den, conf, pra, hard_fraction
    (share of pixels that are hard) and labelled_fraction (share of confidence entries labelled).
    Computed in float32 even under autocast: the sums are large and the hard mask needs exact
    signs.
    """
    gt = _as_b1hw(gt_density, "gt_density").float()
    levels = _field(output, "level_densities").float()
    fused = _field(output, "density").float()
    logits = _field(output, "confidence_logits").float()
    known = gt != UNKNOWN
    if not bool(known.all()):
        # Unknown target pixels (outside the reviewed cells of a partly reviewed image):
        # prediction and target are both zeroed there, so no term and no gradient comes from
        # them, the PRA regions weigh known pixels only, and a patch with nothing known gets no
        # confidence label (all five levels tie).
        gt = torch.where(known, gt, torch.zeros_like(gt))
        levels = levels * known
        fused = fused * known

    l_den = den_loss(levels, gt)
    labels = confidence_labels(levels, gt, k=k)
    if labels.shape != logits.shape:
        raise ValueError(f"confidence_logits {tuple(logits.shape)} do not match {k}x{k} patches "
                         f"of the {tuple(gt.shape[-2:])} target (labels {tuple(labels.shape)})")
    l_conf = conf_loss(logits, labels)
    if use_pra:
        mask = pra_hard_mask(fused, gt)
        l_pra = pra_loss(fused, gt, gamma=gamma, hard_mask=mask)
        hard_fraction = float(mask.float().mean())
    else:
        l_pra = pra_loss(fused, gt, gamma=0.0, hard_mask=torch.zeros_like(fused, dtype=torch.bool))
        hard_fraction = 0.0
    loss = l_den + lam * l_conf + l_pra
    parts = {
        "total": float(loss.detach()),
        "den": float(l_den.detach()),
        "conf": float(l_conf.detach()),
        "pra": float(l_pra.detach()),
        "hard_fraction": hard_fraction,
        "labelled_fraction": float((labels >= 0).float().mean()),
    }
    return loss, parts
