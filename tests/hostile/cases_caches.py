"""Caches that cannot lie: a converted OpenVINO model or an int8 model changed on disk after it was
written (same size, scaled weights, NaN, a damaged digest, a report saying impossible things) is
rebuilt with one warning line, and the count is the one the model gives, never the damaged one."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hostile import ACCEPTED, Case, Ctx, media, run_cli
from hostile.cases_images import records

_REFERENCE: dict[Path, float] = {}  # the undamaged count of each case's image


def _count(ctx: Ctx, *extra) -> list:
    return ["count", ctx.tmp / "a.png", "--weights", ctx.weights, "--json", "--no-progress",
            "--backend", "openvino", *extra]


def _entry(ctx: Ctx, kind: str, *extra) -> Path:
    """Count once (the cache entry is made or found), keep the count, return the entry's folder."""
    from sasnet_core.engine import openvino_backend

    media.write_png(ctx.tmp / "a.png", 48, 64, seed=3)
    res = run_cli(_count(ctx, *extra))
    assert res.code == 0, res.err
    _REFERENCE[ctx.tmp] = records(res)[0]["count"]
    # The entry of these weights (an int8 one adds its calibration's key): the session's cache
    # holds other tests' entries too, some of them written after this one was.
    from sasnet_core.model.fast_forward import fold_batchnorm
    from sasnet_core.weights.registry import load_model

    model = fold_batchnorm(load_model(ctx.weights)[0])
    key = openvino_backend.model_key(model)
    if kind == "int8":
        # The exact entry: the model's key and the key of the one image it calibrated on. Another
        # test may have quantized the same weights on other images, later or earlier.
        from sasnet_core.engine import quantize
        from sasnet_core.engine.choice import cpu_has_native_bf16

        images = quantize.calibration_inputs([ctx.tmp / "a.png"], model.config.block_size)
        float_precision = "bf16" if cpu_has_native_bf16() else "fp32"
        return openvino_backend.default_cache_dir() / "int8" / f"{key}-{quantize._calibration_key(images, float_precision)}"
    entries = [p for p in (openvino_backend.default_cache_dir() / kind).iterdir()
               if p.name == key or p.name.startswith(f"{key}-")]
    return max(entries, key=lambda p: (p / "sha256.json").stat().st_mtime)  # the one this count used


def _floats(path: Path) -> np.ndarray:
    return np.memmap(path, dtype=np.float32, mode="r+")


def _ir_damaged(change, *extra):
    def make(ctx: Ctx):
        change(_entry(ctx, "ir"))
        return _count(ctx, *extra), []
    return make


def _scaled(folder: Path) -> None:  # same size: only a digest can tell
    w = _floats(folder / "sasnet.bin")
    w[: min(len(w), 1_000_000)] *= 1.2
    w.flush()


def _nan(folder: Path) -> None:
    w = _floats(folder / "sasnet.bin")
    w[100:1100] = np.nan
    w.flush()


def _flipped_byte(folder: Path) -> None:
    data = bytearray((folder / "sasnet.bin").read_bytes())
    data[len(data) // 2] ^= 0x10
    (folder / "sasnet.bin").write_bytes(bytes(data))


def _xml_edited(folder: Path) -> None:
    xml = folder / "sasnet.xml"
    xml.write_text(xml.read_text().replace('version="11"', 'version="11" ', 1) + " ")


def _digest_gone(folder: Path) -> None:
    (folder / "sha256.json").unlink()


def _digest_garbage(folder: Path) -> None:
    (folder / "sha256.json").write_bytes(b"\x00\xff not json")


def _digest_escapes(folder: Path) -> None:
    (folder / "sha256.json").write_text(json.dumps({"version": 1, "files": {"../../x": {"size": 1, "sha256": "0"}}}))


def _digest_empty(folder: Path) -> None:
    (folder / "sha256.json").write_text(json.dumps({"version": 1, "files": {}}))


def _digest_of_other_content(folder: Path) -> None:
    data = json.loads((folder / "sha256.json").read_text())
    data["files"]["sasnet.bin"]["sha256"] = "0" * 64
    (folder / "sha256.json").write_text(json.dumps(data))


def _rebuilt(what: str):
    def check(ctx: Ctx, result) -> None:
        from sasnet_core.io.cache_digest import damage

        said = [line for line in result.err.splitlines() if what in line]
        assert len(said) == 1, result.err  # one line says it, naming the cache folder
        assert records(result)[0]["count"] == _REFERENCE.pop(ctx.tmp)  # the model's count, not the damage's
        from sasnet_core.engine import openvino_backend

        kind = "int8" if "int8" in what else "ir"
        for entry in (openvino_backend.default_cache_dir() / kind).iterdir():
            if not entry.name.startswith("."):
                assert damage(entry) is None, entry  # rebuilt whole: the next start uses it
    return check


_IR = "converting the model again"
_INT8 = "quantizing the model again"


def _report_changed(report: dict, reseal: bool):
    """The int8 entry's report replaced by ``report``; resealed: as a writer with a bug would leave it."""
    def make(ctx: Ctx):
        from sasnet_core.io.cache_digest import seal

        folder = _entry(ctx, "int8", "--precision", "int8")
        (folder / "int8_report.json").write_text(json.dumps(report))
        if reseal:
            seal(folder)
        return _count(ctx, "--precision", "int8"), []
    return make


def _no_impossible_report(ctx: Ctx, result) -> None:
    _rebuilt(_INT8)(ctx, result)
    assert "-3 of your images" not in result.err and "-100" not in result.err
    assert "int8 calibrated on 1 of your images: counts within" in result.err


CASES = [
    Case("ir-million-floats-scaled", _ir_damaged(_scaled), ACCEPTED, _rebuilt(_IR), timeout=180),
    Case("ir-nan-in-1000-weights", _ir_damaged(_nan), ACCEPTED, _rebuilt(_IR), timeout=180),
    Case("ir-one-bit-flipped", _ir_damaged(_flipped_byte), ACCEPTED, _rebuilt(_IR), timeout=180),
    Case("ir-xml-edited", _ir_damaged(_xml_edited), ACCEPTED, _rebuilt(_IR), timeout=180),
    Case("ir-digest-missing", _ir_damaged(_digest_gone), ACCEPTED, _rebuilt(_IR), timeout=180),
    Case("ir-digest-not-json", _ir_damaged(_digest_garbage), ACCEPTED, _rebuilt(_IR), timeout=180),
    Case("ir-digest-names-a-file-outside", _ir_damaged(_digest_escapes), ACCEPTED, _rebuilt(_IR), timeout=180),
    Case("ir-digest-lists-nothing", _ir_damaged(_digest_empty), ACCEPTED, _rebuilt(_IR), timeout=180),
    Case("ir-digest-of-other-content", _ir_damaged(_digest_of_other_content), ACCEPTED, _rebuilt(_IR),
         timeout=180),
    Case("int8-report-negative-count-resealed",
         _report_changed({"images": -3, "mean_rel_diff": -1.0, "max_rel_diff": 0.5}, reseal=True),
         ACCEPTED, _no_impossible_report, timeout=400),
    Case("int8-report-edited", _report_changed({"images": 1, "mean_rel_diff": 0.0, "max_rel_diff": 0.0},
                                               reseal=False), ACCEPTED, _rebuilt(_INT8), timeout=400),
]
