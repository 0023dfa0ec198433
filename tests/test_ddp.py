"""DDP on this CPU: two gloo processes run ``train`` (the code behind ``sasnet train``) with a
tiny model; parameters must be equal across ranks afterwards, and only rank 0 writes files."""
from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

WORLD = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, data: str, out: str, result_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    from sasnet_core.model.config import SASNetConfig
    from sasnet_core.model.sasnet import sasnet
    from sasnet_core.training import TrainConfig, train

    torch.manual_seed(100 + rank)  # different initial weights: DDP must broadcast rank 0's
    model = sasnet(config=SASNetConfig(width_mult=0.125))
    initial = torch.cat([p.detach().flatten() for p in model.parameters()]).clone()
    cfg = TrainConfig(data=data, out=out, steps=3, val_every=2, log_every=1, crop_size=64,
                      images_per_step=2, workers=0, lr=1e-3, progress=False,
                      log_json=str(Path(out) / "log.jsonl"), device="cpu")
    result = train(cfg, model=model)  # joins the group we created, leaves it open
    flat = torch.cat([p.detach().flatten() for p in model.parameters()])
    gathered = [torch.zeros_like(flat) for _ in range(WORLD)]
    dist.all_gather(gathered, flat)
    buffers = torch.cat([b.detach().float().flatten() for b in model.buffers()])
    gathered_buf = [torch.zeros_like(buffers) for _ in range(WORLD)]
    dist.all_gather(gathered_buf, buffers)
    summary = {
        "rank": rank, "status": result.status, "step": result.step,
        "max_param_diff": max(float((g - flat).abs().max()) for g in gathered),
        "max_buffer_diff": max(float((g - buffers).abs().max()) for g in gathered_buf),
        "moved": float((flat - initial).abs().max()), "mae": result.figures.get("mae"),
    }
    Path(result_dir, f"rank{rank}.json").write_text(json.dumps(summary))
    dist.barrier()  # both ranks past every collective before either tears gloo down
    dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_processes_stay_in_sync(tmp_path):
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available in this build")
    from sasnet_core.training.synthetic import make_blob_dataset

    data = tmp_path / "data"
    make_blob_dataset(data, 6, size=(96, 128), seed=3)
    make_blob_dataset(data, 3, size=(96, 128), split="test", seed=4)
    out = tmp_path / "run"
    mp.spawn(_worker, args=(_free_port(), str(data), str(out), str(tmp_path)), nprocs=WORLD,
             join=True)
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(WORLD)]
    for r in results:
        assert r["status"] == "completed" and r["step"] == 3
        assert r["max_param_diff"] == 0.0, r  # identical parameters on every rank
        # BN running statistics are broadcast from rank 0 at each forward, then updated by the
        # local batch, so they differ by one step's update: not checked for equality.
        assert r["moved"] > 0  # training did change them
    assert results[0]["mae"] == results[1]["mae"]  # sharded validation, all-reduced
    # rank 0 alone wrote the checkpoints and the log (one start, one end record)
    assert (out / "last.pth").is_file() and (out / "best.pth").is_file()
    recs = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["event"] for r in recs].count("start") == 1 and recs[-1]["event"] == "end"
    assert recs[0]["world_size"] == WORLD and recs[0]["backend"] == "gloo"
    assert not list(out.glob("*.tmp"))
