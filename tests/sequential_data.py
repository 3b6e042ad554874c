"""Sequential test data: 'cycle', where every user walks the items in a fixed cycle, so the next item follows from
the last one (any sequential model learns it), and helpers to build a sequential model's config, loaders and a
batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from conftest import write_atomic
from recforge import Config, create_dataset, data_preparation
from recforge.registry import get_model_class, get_trainer
from recforge.utils import init_seed

N_ITEMS = 12  # items c0..c11; item c(k+1 mod 12) follows item ck
N_USERS = 40


def write_cycle(root: Path, name: str = "cycle") -> Path:
    """``root/<name>/<name>.inter``: N_USERS users, each 6-14 steps along the cycle from a random item, with
    increasing timestamps (user_id, item_id, timestamp); ``<name>.item``: each item's 'class' (``cycle_class``)."""
    rng = np.random.default_rng(7)
    rows = []
    for u in range(N_USERS):
        start, length = int(rng.integers(N_ITEMS)), int(rng.integers(6, 15))
        for step in range(length):
            rows.append([f"u{u}", f"c{(start + step) % N_ITEMS}", 1000 * u + step])
    write_atomic(root, name, "inter", ["user_id:token", "item_id:token", "timestamp:float"], rows)
    write_atomic(
        root, name, "item", ["item_id:token", "class:token_seq"], [[f"c{k}", cycle_class(k)] for k in range(N_ITEMS)]
    )
    write_cycle_knowledge(root, name)
    return root


def write_cycle_knowledge(root: Path, name: str = "cycle") -> None:
    """The knowledge graph of 'cycle' for KSR / GRU4RecKG: item ck is entity ek (``.link``), ek -next-> e(k+1),
    ek -parity-> even / odd, ek -mod3-> m(k mod 3) (``.kg``), and TransE vectors of its entities and relations
    (``.ent`` / ``.rel``, 64 values, ``recforge kg-embeddings``'s)."""
    from recforge.models.knowledge.kg_embeddings import write_kg_embeddings

    triples = []
    for k in range(N_ITEMS):
        triples += [[f"e{k}", "next", f"e{(k + 1) % N_ITEMS}"], [f"e{k}", "parity", "even" if k % 2 == 0 else "odd"]]
        triples.append([f"e{k}", "mod3", f"m{k % 3}"])
    write_atomic(root, name, "kg", ["head_id:token", "relation_id:token", "tail_id:token"], triples)
    write_atomic(root, name, "link", ["item_id:token", "entity_id:token"], [[f"c{k}", f"e{k}"] for k in range(N_ITEMS)])
    write_kg_embeddings(root / name, name, size=64, epochs=30, seed=0)


def cycle_class(k: int) -> str:
    """Item ck's attributes ('class', token_seq, for the models that read item features): its parity and k mod 3."""
    return f"{'even' if k % 2 == 0 else 'odd'} m{k % 3}"


def cycle_config(root: Path, model: Any, **extra: Any) -> Config:
    """A config for ``model`` (a name or a class) on 'cycle': histories of at most 8 items, ranked in full."""
    values = {
        "data_path": str(root),
        "checkpoint_dir": str(root / "saved"),
        "show_progress": False,
        "MAX_ITEM_LIST_LENGTH": 8,
        "topk": [1, 3],
        "metrics": ["Recall", "NDCG"],
        "valid_metric": "Recall@3",
        "train_batch_size": 32,
        "eval_batch_size": 16,
        "data_cache": False,
        "load_col": None,
        **extra,
    }
    return Config(model, "cycle", config_dict=values, cmd_args=[])


def cycle_loaders(config: Config):
    """``(train, valid, test)`` loaders of 'cycle'."""
    return data_preparation(config, create_dataset(config))


def first_batch(loader):
    """The first batch of a training loader, or the interaction of an evaluation loader's first batch."""
    batch = next(iter(loader))
    return batch[0] if isinstance(batch, tuple) else batch


# Per model: what it needs to learn the cycle in a few seconds (the defaults' dropouts are for real data).
TRAINING: dict[str, dict] = {
    "SASRec": {"hidden_dropout_prob": 0.1, "attn_dropout_prob": 0.1},
    "GRU4Rec": {"dropout_prob": 0.0},
    # at 0.01 the post-LayerNorm encoder settles on uniform predictions; 0.001 is RecBole's default
    "BERT4Rec": {"learning_rate": 0.001, "hidden_dropout_prob": 0.1, "attn_dropout_prob": 0.1},
    "NPE": {"mask_history_items": True},  # NPE scores the user's own past items highest
    "TransRec": {"mask_history_items": True},
    # the representation averages the history's embeddings, scored against the same table: seen items outrank
    "SHAN": {"mask_history_items": True},
    "SINE": {"mask_history_items": True},
    "CORE": {"mask_history_items": True},  # cosine against the session's own items: they rank first
    "LightSANs": {"hidden_dropout_prob": 0.1},
    "SASRecF": {"hidden_dropout_prob": 0.1, "attn_dropout_prob": 0.1},
    "FDSA": {"hidden_dropout_prob": 0.1, "attn_dropout_prob": 0.1},
    "SASRecCPR": {"learning_rate": 0.003},  # 0.01 settles at Recall@3 0.55 (seed 2020)
    "GRU4RecCPR": {"learning_rate": 0.003},
    # DIN and DIEN rank in full here like the others (their defaults: 100 sampled items, AUC and LogLoss)
    "DIN": {"eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full"}},
    "DIEN": {
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full"}
    },  # one translation cannot walk a cycle: the last item stays nearest
}
BASE = {"epochs": 30, "learning_rate": 0.01, "stopping_step": 100}
# Models trained in two stages: the pretraining stage's settings; the contract fine-tunes from its file.
PRETRAINING: dict[str, dict] = {"S3Rec": {"pretrain_epochs": 2, "save_step": 2}}
TRAINING["S3Rec"] = {"learning_rate": 0.003, "epochs": 60, "hidden_dropout_prob": 0.1, "attn_dropout_prob": 0.1}


def pretrained_file(root: Path, name: str) -> Path:
    """The file of ``name``'s pretraining stage on 'cycle' (run once per ``root``)."""
    settings = {**BASE, **TRAINING.get(name, {}), **PRETRAINING[name], "train_stage": "pretrain"}
    config = cycle_config(root, name, checkpoint_dir=str(root / f"pretrained-{name}"), **settings)
    path = Path(config["checkpoint_dir"]) / f"{name}-cycle-{config['pretrain_epochs']}.pth"
    if not path.is_file():
        train = cycle_loaders(config)[0]
        init_seed(config["seed"])
        model = get_model_class(name)(config, train.dataset)
        get_trainer(type(model))(config, model).fit(train, verbose=False, saved=False)
    return path


def train_on_cycle(root: Path, name: str, **extra: Any):
    """``(config, model, trainer, loaders)`` after training ``name`` on 'cycle' with its trainer (a model trained
    in two stages: fine-tuned from its pretraining stage's file)."""
    if name in PRETRAINING and "train_stage" not in extra:
        extra = {"train_stage": "finetune", "pre_model_path": str(pretrained_file(root, name)), **extra}
    config = cycle_config(root, name, **{**BASE, **TRAINING.get(name, {}), **extra})
    loaders = cycle_loaders(config)
    init_seed(config["seed"])
    model = get_model_class(name)(config, loaders[0].dataset)
    trainer = get_trainer(type(model))(config, model, run_dir=root / f"run-{name}")
    trainer.fit(loaders[0], loaders[1], verbose=False, saved=False)
    return config, model, trainer, loaders


def check_sequential_contract(root: Path, name: str, **extra: Any) -> dict[str, float]:
    """Train ``name`` on 'cycle' (a two-stage model: its fine-tuning stage): it ranks the next item of the cycle in its top 3 for >= 80 % of the test examples,
    its full-ranking scores equal its pairwise ones, and its state round-trips. Returns the test metrics."""
    config, model, trainer, (train, valid, test) = train_on_cycle(root, name, **extra)
    result = trainer.evaluate(test, load_best_model=False)
    assert result["recall@3"] >= 0.8, result
    model.eval()
    batch = first_batch(test)
    with torch.no_grad():
        scores = model.full_sort_predict(batch)
        assert scores.shape == (len(batch), model.n_items)
        rows = torch.arange(len(batch)).repeat_interleave(model.n_items)
        pairs = batch[rows]
        pairs[model.ITEM_ID] = torch.arange(model.n_items).repeat(len(batch))
        pair_scores = model.predict(pairs).view(len(batch), -1)
        assert torch.allclose(pair_scores[:, 1:].double(), scores[:, 1:].double(), atol=1e-4)
        fresh = get_model_class(name)(config, train.dataset)
        fresh.load_state_dict(model.state_dict())
        fresh.eval()
        assert torch.allclose(fresh.full_sort_predict(batch), scores)
    return result
