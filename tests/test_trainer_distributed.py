"""Distributed training on the CPU: two gloo processes started by ``recforge run --nproc 2``.

Two processes train like one process with the same global batch (gradients averaged over it), evaluate every
metric bit for bit as one process does with the same weights, resume with the same or another number of
processes, and stop together when one fails, which alone reports its error.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import ROOT, write_atomic
from feature_data import write_feature_data
from recforge import Config
from recforge.errors import ConfigError
from recforge.quick_start import load_data_and_model
from recforge.registry import get_trainer

pytestmark = [
    pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not available"),
    pytest.mark.slow,
]

RANKING_METRICS = [
    "Recall",
    "MRR",
    "NDCG",
    "Hit",
    "Precision",
    "MAP",
    "GAUC",
    "ItemCoverage",
    "GiniIndex",
    "ShannonEntropy",
    "AveragePopularity",
    "TailPercentage",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_interactions(root: Path) -> Path:
    rng = np.random.default_rng(1)
    rows = [
        [f"u{u}", f"i{int(rng.integers(120))}", int(rng.integers(1, 6)), t]
        for t, u in enumerate(rng.integers(0, 300, size=6000))
    ]
    write_atomic(root, "dd", "inter", ["user_id:token", "item_id:token", "rating:float", "timestamp:float"], rows)
    return root


def recforge(*args: str, nproc: int = 1, check: bool = True) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "recforge", "run", *args, "--show_progress", "false", "--quiet"]
    if nproc > 1:
        command += ["--nproc", str(nproc), "--port", str(free_port())]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1", "RECFORGE_NO_DOWNLOAD": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)
    if check:
        assert done.returncode == 0, done.stderr[-3000:]
    return done


def run_folder(checkpoint_dir: Path) -> Path:
    (folder,) = checkpoint_dir.iterdir()
    return folder


def history_losses(run: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (run / "history.jsonl").read_text().splitlines()]


def evaluated_alone(checkpoint: Path, phase: str = "test") -> dict[str, float]:
    """The checkpoint's metrics from one process (the Python API, full precision)."""
    config, model, _, _, valid, test = load_data_and_model(checkpoint)
    trainer = get_trainer(config.model_class)(config, model)
    return trainer.evaluate(test if phase == "test" else valid, load_best_model=False)


def bpr_args(root: Path, saved: str, *extra: str) -> list[str]:
    return [
        "--model",
        "BPR",
        "--dataset",
        "dd",
        "--data_path",
        str(root),
        "--checkpoint_dir",
        str(root / saved),
        "--train_batch_size",
        "256",
        "--eval_batch_size",
        "64",
        "--epochs",
        "3",
        "--topk",
        "[5, 10]",
        "--valid_metric",
        "NDCG@10",
        "--data_cache",
        "false",
        *extra,
    ]


@pytest.mark.parametrize(("mode", "learner"), [("full", "adam"), ("uni10", "adam"), ("full", "sparse_adam")])
def test_two_processes_train_as_one_and_evaluate_bit_for_bit(tmp_path, mode, learner):
    write_interactions(tmp_path)
    metrics = RANKING_METRICS + (["AUC"] if mode != "full" else [])
    extra = ["--metrics", json.dumps(metrics), "--eval_args", json.dumps({"mode": mode}), "--learner", learner]
    recforge(*bpr_args(tmp_path, "two", *extra), nproc=2)
    recforge(*bpr_args(tmp_path, "one", *extra))
    two, one = run_folder(tmp_path / "two"), run_folder(tmp_path / "one")
    # Gradients averaged over the same global batch: the same training, up to float rounding.
    weights_two = torch.load(two / "checkpoints" / "last.pth", weights_only=True)["model"]
    weights_one = torch.load(one / "checkpoints" / "last.pth", weights_only=True)["model"]
    for name, value in weights_one.items():
        assert torch.allclose(weights_two[name], value, atol=1e-6), name
    # The loss in the history (and the log, the report) is every rank's share, reduced: one process's loss.
    assert history_losses(two) == pytest.approx(history_losses(one), rel=1e-6)
    # The same weights give every metric bit for bit, whether one process or two evaluate them.
    result_two = json.loads((two / "metrics.json").read_text())["test_result"]
    assert set(result_two) >= {"gauc", "itemcoverage@10", "giniindex@5", "shannonentropy@10", "map@10"}
    assert result_two == evaluated_alone(two / "checkpoints" / "best.pth")


def test_labelled_evaluation_in_two_processes(tmp_path):
    write_feature_data(tmp_path)
    args = [
        "--model",
        "FM",
        "--dataset",
        "feat",
        "--data_path",
        str(tmp_path),
        "--checkpoint_dir",
        str(tmp_path / "two"),
        "--threshold",
        "{rating: 3}",
        "--load_col",
        "~",
        "--epochs",
        "2",
        "--train_batch_size",
        "64",
        "--eval_batch_size",
        "16",
        "--data_cache",
        "false",
        "--metrics",
        "[AUC, GAUC, LogLoss, MAE, RMSE]",
    ]
    recforge(*args, nproc=2)
    folder = run_folder(tmp_path / "two")
    result = json.loads((folder / "metrics.json").read_text())["test_result"]
    assert result == evaluated_alone(folder / "checkpoints" / "best.pth")


def test_resume_with_the_same_and_another_number_of_processes(tmp_path):
    write_interactions(tmp_path)
    recforge(*bpr_args(tmp_path, "whole", "--epochs", "4", "--eval_step", "0"), nproc=2)
    recforge(*bpr_args(tmp_path, "half", "--epochs", "2", "--eval_step", "0"), nproc=2)
    start = tmp_path / "epoch1.pth"  # outside a run folder: each resume continues in a new one
    shutil.copyfile(run_folder(tmp_path / "half") / "checkpoints" / "last.pth", start)
    whole = torch.load(run_folder(tmp_path / "whole") / "checkpoints" / "last.pth", weights_only=True)
    recforge("--resume", str(start), "--epochs", "4", "--checkpoint_dir", str(tmp_path / "again2"), nproc=2)
    recforge("--resume", str(start), "--epochs", "4", "--checkpoint_dir", str(tmp_path / "again1"))
    log = (run_folder(tmp_path / "again1") / "run.log").read_text()
    assert "will not match" not in log  # another number of processes is not another config
    assert "trained with 2 process(es), with 1: the same batches, summed in another order" in log
    for where, exact in (("again2", True), ("again1", False)):
        resumed = torch.load(run_folder(tmp_path / where) / "checkpoints" / "last.pth", weights_only=True)
        assert resumed["epoch"] == 3
        for name, value in whole["model"].items():
            if exact:  # the same processes: bit for bit
                assert torch.equal(resumed["model"][name], value), name
            else:  # another number of processes: the same batches, another summation order
                assert torch.allclose(resumed["model"][name], value, atol=1e-6), name


PLUGIN = '''
import os
import torch
from recforge.errors import DataError
from recforge.models.general.bpr import BPR


class SpareBPR(BPR):
    """BPR with a parameter its loss never touches (sync_grad_loss keeps the ranks' reductions in step)."""

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.unused = torch.nn.Parameter(torch.zeros(3))


class FailingBPR(BPR):
    calls = 0

    def calculate_loss(self, interaction):
        FailingBPR.calls += 1
        if os.environ.get("RANK") == "1" and FailingBPR.calls == 3:
            raise DataError("the data of rank 1 is bad")
        return super().calculate_loss(interaction)
'''


def test_a_parameter_outside_the_loss_does_not_stall_the_ranks(tmp_path):
    write_interactions(tmp_path)
    (tmp_path / "plugin.py").write_text(PLUGIN)
    args = bpr_args(tmp_path, "spare", "--epochs", "2")
    args[args.index("BPR")] = "SpareBPR"
    recforge("--import", str(tmp_path / "plugin.py"), *args, nproc=2)
    assert (run_folder(tmp_path / "spare") / "metrics.json").is_file()


def test_a_failing_rank_stops_the_others_and_its_error_is_shown_once(tmp_path):
    write_interactions(tmp_path)
    (tmp_path / "plugin.py").write_text(PLUGIN)
    args = bpr_args(tmp_path, "fail")
    args[args.index("BPR")] = "FailingBPR"
    done = recforge("--import", str(tmp_path / "plugin.py"), *args, nproc=2, check=False)
    assert done.returncode == 2
    assert done.stderr.count("the data of rank 1 is bad") == 1
    assert "recforge: error: the data of rank 1 is bad" in done.stderr
    assert "process 1 of 2 failed" in done.stderr and "Traceback" not in done.stderr


BUGGY = """
import os
from recforge.models.general.bpr import BPR


class BuggyBPR(BPR):
    calls = 0

    def calculate_loss(self, interaction):
        BuggyBPR.calls += 1
        if os.environ.get("RANK") == "1" and BuggyBPR.calls == 2:
            raise IndexError("index 99 is out of bounds")
        return super().calculate_loss(interaction)
"""


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
def test_a_bug_in_a_rank_is_shown_once_in_one_line_or_with_its_traceback(tmp_path, debug):
    write_interactions(tmp_path)
    (tmp_path / "buggy.py").write_text(BUGGY)
    args = bpr_args(tmp_path, "bug")
    args[args.index("BPR")] = "BuggyBPR"
    done = recforge(
        "--import", str(tmp_path / "buggy.py"), *args, *(["--debug"] if debug else []), nproc=2, check=False
    )
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.startswith("recforge: error:")]
    assert lines == [
        "recforge: error: IndexError: index 99 is out of bounds (process 1 of 2 failed; the others were stopped)"
    ]
    assert ("Traceback" in done.stderr) == debug
    if debug:  # the failing rank's own traceback, down to the user's line
        assert 'buggy.py", line 12, in calculate_loss' in done.stderr


@pytest.mark.parametrize("model", ["Pop", "ItemKNN"])
def test_models_without_gradients_refuse_several_processes(model):
    with pytest.raises(ConfigError, match=rf"{model} is fitted in one pass.*run it with nproc 1"):
        Config(model, "ml-latest-small", config_dict={"nproc": 2}, cmd_args=[])


def _average_in_two_ranks(rank: int, init_file: str, out: str) -> None:
    """One of two gloo ranks: gradients of three embedding weights, averaged (sparse of different sizes, absent on
    rank 1, dense on rank 0 only); rank 0 saves the results."""
    from recforge.trainer import distributed

    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        tables = [torch.nn.Embedding(10, 3, sparse=True) for _ in range(3)]
        rows = [torch.tensor([1, 2, 2]), torch.tensor([2, 7, 7, 9])][rank]
        (tables[0](rows) * (rank + 1)).sum().backward()
        if rank == 0:
            (tables[1](torch.tensor([4])) * 3).sum().backward()
            (tables[2].weight * 2).sum().backward()  # read whole: a dense gradient
        else:
            (tables[2](torch.tensor([0, 5]))).sum().backward()
        distributed.average_sparse_gradients([t.weight for t in tables])
        if rank == 0:
            torch.save([t.weight.grad.to_dense() for t in tables], out)
    finally:
        torch.distributed.destroy_process_group()


def test_sparse_gradients_are_averaged_over_the_ranks(tmp_path):
    """Sparse embedding weights are left out of DDP and averaged by gathering every rank's rows and values; the
    mean equals the dense mean of the ranks' gradients, whatever each rank holds."""
    from recforge.trainer import distributed

    out = tmp_path / "grads.pt"
    torch.multiprocessing.spawn(_average_in_two_ranks, args=(str(tmp_path / "init"), str(out)), nprocs=2)
    first, second, third = torch.load(out)
    expected = torch.zeros(10, 3)
    expected.index_put_((torch.tensor([1, 2, 2]),), torch.ones(3, 3) * 1 / 2, accumulate=True)
    expected.index_put_((torch.tensor([2, 7, 7, 9]),), torch.ones(4, 3) * 2 / 2, accumulate=True)
    assert torch.allclose(first, expected)
    assert torch.equal(second, torch.zeros(10, 3).index_fill_(0, torch.tensor([4]), 1.5))
    dense = torch.full((10, 3), 2.0)
    dense[[0, 5]] += 1
    assert torch.allclose(third, dense / 2)

    class Mixed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.table = torch.nn.Embedding(10, 3, sparse=True)
            self.dense = torch.nn.Linear(3, 1)

    model = Mixed()
    assert [name for name, _ in distributed.sparse_parameters(model)] == ["table.weight"]
    model.table.weight.requires_grad_(False)
    assert distributed.sparse_parameters(model) == []


def test_torchrun_starts_the_same_ranks(tmp_path):
    write_interactions(tmp_path)
    recforge(*bpr_args(tmp_path, "launched"), nproc=2)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(free_port()),
        "-m",
        "recforge",
        "run",
        *bpr_args(tmp_path, "torchrun"),
        "--show_progress",
        "false",
        "--quiet",
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    results = [json.loads((run_folder(tmp_path / d) / "metrics.json").read_text()) for d in ("launched", "torchrun")]
    assert results[0]["test_result"] == results[1]["test_result"]


def test_sigterm_stops_every_rank_and_leaves_a_checkpoint(tmp_path):
    import signal
    import time

    write_interactions(tmp_path)
    command = [
        sys.executable,
        "-m",
        "recforge",
        "run",
        *bpr_args(tmp_path, "stopped", "--epochs", "500"),
        "--show_progress",
        "false",
        "--quiet",
        "--nproc",
        "2",
        "--port",
        str(free_port()),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    history = None
    while time.monotonic() < deadline:
        found = list((tmp_path / "stopped").glob("*/history.jsonl"))
        if found and len(found[0].read_text().splitlines()) >= 2:
            history = found[0]
            break
        time.sleep(0.2)
    assert history is not None, "training did not start"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert stderr.count("resume with: recforge run --resume") == 1
    last = history.parent / "checkpoints" / "last.pth"
    assert torch.load(last, weights_only=True)["epoch"] >= 1


def test_a_graph_model_trains_with_two_processes_and_evaluates_sharded(tmp_path):
    """The command of the report: a graph model (a sparse adjacency buffer) with --nproc 2, then ``recforge
    evaluate --nproc 2`` and under torchrun: the same table as one process, printed once."""
    write_interactions(tmp_path)
    args = bpr_args(tmp_path, "two", "--learner", "sgd", "--learning_rate", "0.05")  # Adam would magnify rounding
    args[args.index("BPR")] = "LightGCN"
    recforge(*args, nproc=2)
    args[args.index("--checkpoint_dir") + 1] = str(tmp_path / "one")
    recforge(*args)
    two, one = run_folder(tmp_path / "two"), run_folder(tmp_path / "one")
    weights_two = torch.load(two / "checkpoints" / "last.pth", weights_only=True)["model"]
    weights_one = torch.load(one / "checkpoints" / "last.pth", weights_only=True)["model"]
    for name, value in weights_one.items():
        assert torch.allclose(weights_two[name], value, atol=1e-6), name
    best = two / "checkpoints" / "best.pth"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    evaluate = ["-m", "recforge", "evaluate", "--checkpoint", str(best), "--quiet", "--data_cache", "false"]
    outputs = []
    for launcher in ([], ["--nproc", "2", "--port", str(free_port())], "torchrun"):
        if launcher == "torchrun":
            command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port"]
            command += [str(free_port()), *evaluate]
        else:
            command = [sys.executable, *evaluate, *launcher]
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1] == outputs[2]
    assert outputs[0].count("recall@10") == 1


def two_nodes(command_of, env) -> list[subprocess.CompletedProcess]:
    """Run ``command_of(node)`` for nodes 0 and 1 at once (two machines, played by one on loopback)."""
    processes = [
        subprocess.Popen(command_of(node), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for node in (0, 1)
    ]
    done = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        done.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    return done


@pytest.mark.skipif(
    shutil.which("torchrun") is None and not ROOT.joinpath(".venv/bin/torchrun").exists(),
    reason="torchrun is not installed",
)
@pytest.mark.parametrize("model", ["BPR", "LightGCN"])
def test_two_nodes_on_loopback_train_and_evaluate_as_one_process(tmp_path, model):
    """Two torchrun launches with --nnodes 2 (a rendezvous on 127.0.0.1) and RecBole's own keys (world_size,
    offset, ip, port) train as one process does and evaluate bit for bit."""
    write_interactions(tmp_path)
    args = bpr_args(tmp_path, "one", "--learner", "sgd", "--learning_rate", "0.05")  # Adam would magnify rounding
    args[args.index("BPR")] = model
    recforge(*args)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    port = free_port()

    def torchrun(node: int) -> list[str]:
        launch = ["--nnodes", "2", "--node_rank", str(node), "--nproc_per_node", "1"]
        launch += ["--master_addr", "127.0.0.1", "--master_port", str(port)]
        where = [
            *args[: args.index("--checkpoint_dir") + 1],
            str(tmp_path / "torchrun"),
            *args[args.index("--checkpoint_dir") + 2 :],
        ]
        return [sys.executable, "-m", "torch.distributed.run", *launch, "-m", "recforge", "run", *where, "--quiet"]

    for done in two_nodes(torchrun, env):
        assert done.returncode == 0, done.stderr[-3000:]
    recbole_port = free_port()

    def recbole_keys(node: int) -> list[str]:
        where = [
            *args[: args.index("--checkpoint_dir") + 1],
            str(tmp_path / "keys"),
            *args[args.index("--checkpoint_dir") + 2 :],
        ]
        keys = ["--nproc", "1", "--world_size", "2", "--offset", str(node), "--ip", "127.0.0.1"]
        return [sys.executable, "-m", "recforge", "run", *where, *keys, "--port", str(recbole_port), "--quiet"]

    for done in two_nodes(recbole_keys, env):
        assert done.returncode == 0, done.stderr[-3000:]
    one = run_folder(tmp_path / "one")
    weights_one = torch.load(one / "checkpoints" / "last.pth", weights_only=True)["model"]
    for launched in ("torchrun", "keys"):
        folder = run_folder(tmp_path / launched)
        weights = torch.load(folder / "checkpoints" / "last.pth", weights_only=True)["model"]
        for name, value in weights_one.items():
            assert torch.allclose(weights[name], value, atol=1e-6), (launched, name)
        result = json.loads((folder / "metrics.json").read_text())["test_result"]
        assert result == evaluated_alone(folder / "checkpoints" / "best.pth")
