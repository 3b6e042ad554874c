"""The CUDA path: training and evaluation on a GPU in fp32, bf16 and fp16 (with the GradScaler), pinned training
batches, exact resume, and nccl with two processes. Skipped, with the reason, where no GPU is present."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import ROOT, tiny_config
from recforge import create_dataset, data_preparation
from recforge.registry import get_model_class, get_trainer
from recforge.utils import init_seed

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
needs_two_gpus = pytest.mark.skipif(torch.cuda.device_count() < 2, reason="nccl needs two CUDA devices")


def trained(tmp_path, model="BPR", **overrides):
    config = tiny_config(tmp_path, model, device="cuda", epochs=4, train_batch_size=4, learning_rate=0.01, **overrides)
    train, valid, test = data_preparation(config, create_dataset(config))
    init_seed(config["seed"])
    net = get_model_class(model)(config, train.dataset)
    trainer = get_trainer(type(net))(config, net)
    trainer.fit(train, valid, verbose=False)
    return trainer, train, valid, test


@needs_cuda
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_training_on_cuda_in_every_precision(tiny_path, precision):
    trainer, train, _, test = trained(tiny_path, precision=precision)
    assert next(trainer.model.parameters()).is_cuda
    assert train.pin_memory  # the epoch's columns are page-locked and copied asynchronously
    assert all(np.isfinite(v) for v in trainer.train_loss_dict.values())
    assert trainer.precision.scaler.is_enabled() == (precision == "fp16")
    result = trainer.evaluate(test)
    assert 0.0 <= result["recall@3"] <= 1.0


@needs_cuda
def test_fp16_resume_on_cuda_is_exact(tiny_path):
    whole, *_ = trained(tiny_path, precision="fp16")
    config = tiny_config(
        tiny_path, "BPR", device="cuda", epochs=2, train_batch_size=4, learning_rate=0.01, precision="fp16"
    )
    train, valid, _ = data_preparation(config, create_dataset(config))
    init_seed(config["seed"])
    half = get_trainer(get_model_class("BPR"))(config, get_model_class("BPR")(config, train.dataset))
    half.fit(train, valid, verbose=False)
    config4 = tiny_config(
        tiny_path, "BPR", device="cuda", epochs=4, train_batch_size=4, learning_rate=0.01, precision="fp16"
    )
    train, valid, _ = data_preparation(config4, create_dataset(config4))
    resumed = get_trainer(get_model_class("BPR"))(config4, get_model_class("BPR")(config4, train.dataset))
    resumed.resume_checkpoint(half.checkpoint_path("last"))
    resumed.fit(train, valid, verbose=False)
    for name, value in whole.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[name], value), name
    assert resumed.precision.scaler.get_scale() == whole.precision.scaler.get_scale()


@needs_cuda
@pytest.mark.parametrize("model", ["LightGCN", "FM"])
def test_graph_and_context_models_on_cuda(tiny_path, model):
    extra = {}
    if model == "FM":
        extra = {
            "threshold": {"rating": 3},
            "train_neg_sample_args": None,
            "metrics": ["AUC"],
            "valid_metric": "AUC",
            "eval_args": {"split": {"RS": [0.6, 0.2, 0.2]}, "mode": "labeled"},
        }
    trainer, *_, test = trained(tiny_path, model, precision="bf16", **extra)
    assert all(np.isfinite(v) for v in trainer.train_loss_dict.values())
    assert trainer.evaluate(test)


@needs_two_gpus
def test_two_processes_on_two_gpus_with_nccl(tiny_path):
    args = [
        "--model",
        "BPR",
        "--dataset",
        "tiny",
        "--data_path",
        str(tiny_path),
        "--device",
        "cuda",
        "--checkpoint_dir",
        str(tiny_path / "nccl"),
        "--epochs",
        "2",
        "--train_batch_size",
        "4",
        "--load_col",
        "{inter: [user_id, item_id, rating, timestamp]}",
        "--show_progress",
        "false",
        "--quiet",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, "-m", "recforge", "run", *args, "--nproc", "2"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (folder,) = (tiny_path / "nccl").iterdir()
    assert json.loads((folder / "metrics.json").read_text())["test_result"]
