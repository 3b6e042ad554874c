"""Every registered model that can train with several processes trains with two, as one process does.

One group of two gloo ranks is spawned once and trains every model for one epoch on a small data set with
interactions, features and a knowledge graph (SGD, dropouts 0); the same runs in one process are the reference.
Two processes' weights are within 1e-6 of one process's and the epoch's loss (reduced over the ranks) equals
one process's, except where ``APPROXIMATE`` says why not; every model's evaluation by two processes equals one
process's bit for bit for the same weights.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import write_atomic
from feature_data import write_feature_data
from recforge import Config
from recforge.errors import ConfigError
from recforge.models import model_names
from recforge.models.knowledge.kg_embeddings import write_kg_embeddings
from recforge.quick_start import load_data_and_model
from recforge.registry import declared_keys, get_model_class, get_trainer
from recforge.utils.enum_type import ModelType

pytestmark = [
    pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not available"),
    pytest.mark.slow,
]

RANKED_LABELS = {  # context-aware models learn sampled labels, ranked in full (as in test_models)
    "train_neg_sample_args": {"distribution": "uniform", "sample_num": 1},
    "eval_args": {"split": {"RS": [0.8, 0.1, 0.1]}, "order": "RO", "group_by": "user", "mode": "full"},
}
NO_DROPOUT = {
    "node_dropout": 0.0,
    "message_dropout": 0.0,
    "mess_dropout": 0.0,
    "node_dropout_rate": 0.0,
    "mess_dropout_rate": 0.0,
    "dropout_prob": 0.0,
    "hidden_dropout_prob": 0.0,
    "attn_dropout_prob": 0.0,
    "sess_dropout": 0.0,
    "item_dropout": 0.0,
    "drop_ex": 0.0,
    "drop_im": 0.0,
}
SEQUENTIAL = {  # the examples of each user's interactions in the order of the float column 'hour'
    "TIME_FIELD": "hour",
    "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full"},
}
# Where two processes follow one only approximately: model -> (weight tolerance, loss tolerance (relative), why).
# Every other model: weights within 1e-6 and the loss within 1e-6 (relative), its losses being means or declared
# sums over the batch's rows (``Recommender.loss_reductions``).
APPROXIMATE = {
    # A regulariser over the norm of the whole batch's embeddings (RecBole's EmbLoss): sqrt(sum of a batch) is not
    # the sum of the slices' values. Its weight is small, so the weights still agree within 1e-6.
    "LightGCN": (1e-6, 1e-4, "embedding-norm regulariser"),
    "NGCF": (1e-6, 1e-4, "embedding-norm regulariser"),
    "NCL": (1e-6, 1e-4, "embedding-norm regulariser"),
    "KGAT": (1e-6, 1e-4, "embedding-norm regulariser"),
    "KGIN": (1e-6, 1e-4, "embedding-norm regulariser"),
    "CKE": (1e-4, 1e-2, "embedding-norm regulariser with reg_weights 0.01"),
    "MKR": (1e-4, 1e-3, "the KG loss's L2 term is multiplied by the batch size"),
    # Each rank normalises its slice with the slice's statistics (SyncBatchNorm needs CUDA).
    "DCN": (None, 1e-2, "batch normalisation"),
    "DCNV2": (None, 1e-2, "batch normalisation"),
    "NFM": (None, 1e-2, "batch normalisation"),
    "DSSM": (None, 1e-2, "batch normalisation"),
    "DIN": (None, 1e-2, "batch normalisation"),
    "DIEN": (None, 1e-2, "batch normalisation"),
    # Random numbers drawn per row of the batch: one process and two draw them for other rows.
    "KTUP": (None, 1e-1, "Gumbel-softmax draws per row"),
    "MCCLK": (None, 2e-1, "node dropout and in-batch contrast"),
    "SimGCL": (None, 2e-1, "noise per embedding and in-batch negatives"),
    # Sequential models.
    "BERT4Rec": (None, 1e-3, "the loss is averaged over the batch's masked positions, not its rows"),
    "SHAN": (1e-3, 1e-4, "norm regulariser of the batch's embeddings"),
    "TransRec": (1e-6, 1e-1, "RecBole's detached norms of the batch's embeddings count in the reported loss"),
    "NextItNet": (1e-4, 1e-5, "ten residual blocks magnify the rounding of the reduced gradients"),
    "FEARec": (1e-3, 1e-5, "training attention aggregates the delays its slice of the batch correlates most"),
    "S3Rec": (None, 2e-1, "pretraining masks, negatives and segments drawn per row"),
}


def multi_process_models() -> list[str]:
    """The registered models whose config accepts nproc 2 (Pop, ItemKNN and the trees refuse it)."""
    names = []
    for name in model_names():
        try:
            Config(name, "ml-latest-small", config_dict={"nproc": 2}, cmd_args=[])
        except ConfigError:
            continue
        names.append(name)
    return names


MODELS = multi_process_models()


def settings(root: Path, model: str, where: str) -> dict:
    cls = get_model_class(model)
    own = {key.name for key in declared_keys(cls) or ()}
    values = {
        "data_path": str(root),
        "checkpoint_dir": str(root / where / model),
        "load_col": None,
        "epochs": 1,
        "train_batch_size": 64,
        "eval_batch_size": 16,
        "learner": "sgd",  # Adam divides by the root of tiny second moments: float rounding would move weights
        "learning_rate": 0.05,
        "topk": [5],
        "metrics": ["Recall", "NDCG", "GiniIndex"],
        "valid_metric": "Recall@5",
        "eval_args": {"split": {"RS": [0.8, 0.1, 0.1]}, "order": "RO", "group_by": "user", "mode": "full"},
        "data_cache": False,
        "show_progress": False,
        **{key: value for key, value in NO_DROPOUT.items() if key in own},
    }
    for key in declared_keys(cls) or ():
        if key.name == "dropout_probs":  # NARM's two rates, AutoInt's three
            values["dropout_probs"] = [0.0] * len(key.default)
    if "num_clusters" in own:
        values["num_clusters"] = 4  # NCL on 30 users
    if "selected_features" in own:  # the feature-aware sequential models read the items' genres
        values["selected_features"] = ["genres"]
    if "item_attribute" in own:  # S3Rec's pretraining stage, one epoch, with the genres as attributes
        values.update(item_attribute="genres", pretrain_epochs=1, learning_rate=0.001)  # its losses are sums
    if cls.type is ModelType.CONTEXT:
        values.update(RANKED_LABELS)
    if cls.type is ModelType.SEQUENTIAL:
        values.update(SEQUENTIAL)
    return values


def write_grid(root: Path) -> Path:
    """'grid': the feature data set 'feat' (interactions, user and item features) with a knowledge graph and its
    TransE vectors."""
    write_feature_data(root)
    for suffix in ("inter", "user", "item"):
        (root / "feat" / f"feat.{suffix}").rename(root / "feat" / f"grid.{suffix}")
    (root / "feat").rename(root / "grid")
    links = [[f"i{i}", f"e{i}"] for i in range(20)]
    triples = [[f"e{i}", "genre", f"g{i % 3}"] for i in range(20)] + [
        [f"e{i}", "next", f"e{(i + 1) % 20}"] for i in range(20)
    ]
    write_atomic(root, "grid", "link", ["item_id:token", "entity_id:token"], links)
    write_atomic(root, "grid", "kg", ["head_id:token", "relation_id:token", "tail_id:token"], triples)
    write_kg_embeddings(root / "grid", "grid", size=64, epochs=5, seed=0)  # KSR's and GRU4RecKG's .ent / .rel
    return root


def _train_in_ranks(rank: int, port: int, root: str, models: list[str]) -> None:
    """One of two ranks: train every model for one epoch in the same process group."""
    from recforge.quick_start import run

    os.environ.update(
        {
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": "2",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
        }
    )
    torch.set_num_threads(1)
    for model in models:
        run(model, "grid", config_dict=settings(Path(root), model, "two"), cmd_args={}, verbose=False)
    from recforge.trainer import distributed

    distributed.leave()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Run folders of every model trained by two processes and by one."""
    from recforge.quick_start import run

    root = write_grid(tmp_path_factory.mktemp("grid"))
    torch.multiprocessing.spawn(_train_in_ranks, args=(free_port(), str(root), MODELS), nprocs=2)
    for model in MODELS:
        run(model, "grid", config_dict=settings(root, model, "one"), cmd_args={}, verbose=False)
    return root


def only_run(folder: Path) -> Path:
    (run,) = (path for path in folder.iterdir() if path.is_dir())  # S3Rec's pretrained file lies beside its run
    return run


@pytest.mark.parametrize("model", MODELS)
def test_every_model_trains_with_two_processes_as_with_one(trained, model):
    two, one = only_run(trained / "two" / model), only_run(trained / "one" / model)
    loss_two = json.loads((two / "history.jsonl").read_text().splitlines()[0])["loss"]
    loss_one = json.loads((one / "history.jsonl").read_text().splitlines()[0])["loss"]
    weights_two = torch.load(two / "checkpoints" / "last.pth", weights_only=True)["model"]
    weights_one = torch.load(one / "checkpoints" / "last.pth", weights_only=True)["model"]
    assert set(weights_two) == set(weights_one) and np.isfinite(loss_two)
    weight_tolerance, loss_tolerance, _ = APPROXIMATE.get(model, (1e-6, 1e-6, ""))
    # The loss of the epoch: the ranks' weighted slices, reduced, are the loss one process reports.
    assert loss_two == pytest.approx(loss_one, rel=loss_tolerance)
    if weight_tolerance is not None:
        for name, value in weights_one.items():
            if value.is_floating_point():
                assert torch.allclose(weights_two[name], value, atol=weight_tolerance), name


@pytest.mark.parametrize("model", MODELS)
def test_two_processes_evaluate_as_one_bit_for_bit(trained, model):
    two = only_run(trained / "two" / model)
    config, net, _, _, _, test = load_data_and_model(two / "checkpoints" / "best.pth")
    alone = get_trainer(config.model_class)(config, net).evaluate(test, load_best_model=False)
    assert json.loads((two / "metrics.json").read_text())["test_result"] == alone
