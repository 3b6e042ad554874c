"""Sequential models through the plain Trainer: an interrupted and resumed BERT4Rec run (random masks of the
loader's generator, dropout of torch's) equals an uninterrupted one bit for bit; a trained model recommends from
each user's latest history after ``recforge.load``."""

from __future__ import annotations

import pytest
import torch

import recforge
from recforge.errors import TrainingInterrupted
from recforge.trainer import Trainer
from recforge.utils import init_seed
from sequential_data import N_ITEMS, cycle_config, cycle_loaders, write_cycle
from test_trainer_resume import InterruptAt, assert_same, summary


@pytest.fixture(scope="module")
def cycle_root(tmp_path_factory):
    return write_cycle(tmp_path_factory.mktemp("cycle"))


def build(root, run, seed=2020, **overrides):
    values = {"epochs": 3, "checkpoint_dir": str(root / "saved"), "hidden_size": 16, "inner_size": 32, **overrides}
    config = cycle_config(root, "BERT4Rec", **values)
    init_seed(seed)
    train, valid, test = cycle_loaders(config)
    model = config.model_class(config, train.dataset)
    return Trainer(config, model, run_dir=root / run), train, valid, test


def test_bert4rec_resume_reproduces_an_uninterrupted_run(cycle_root):
    straight, train, valid, test = build(cycle_root, "straight")
    straight.fit(train, valid, verbose=False)
    expected = summary(straight, test)
    first, train, valid, _ = build(cycle_root, "interrupted")
    first.callbacks.append(InterruptAt(0))
    with pytest.raises(TrainingInterrupted) as info:
        first.fit(train, valid, verbose=False)
    resumed, train, valid, test = build(cycle_root, "interrupted", seed=7)
    resumed.resume_checkpoint(info.value.checkpoint)
    resumed.fit(train, valid, verbose=False)
    assert_same(summary(resumed, test), expected)


@pytest.mark.slow
def test_a_loaded_sequential_model_recommends_what_follows_the_latest_history(cycle_root):
    values = {"epochs": 30, "learning_rate": 0.01, "hidden_dropout_prob": 0.1, "attn_dropout_prob": 0.1}
    config = cycle_config(cycle_root, "SASRec", checkpoint_dir=str(cycle_root / "runs"), **values)
    result = recforge.run(config_dict=dict(config.items()), model="SASRec", dataset="cycle", verbose=False)
    loaded = recforge.load(result["run_dir"] + "/checkpoints/best.pth")
    data = loaded.sequences
    users = [str(u) for u in data.field2id_token["user_id"][1:]]
    table = loaded.recommend(users, k=1, include_seen=True).to_pydict()
    last_items = {}
    items = data.interactions["item_id"]
    for user in range(1, data.user_num):  # the user's last interaction (of every split)
        last_items[data.field2id_token["user_id"][user]] = data.field2id_token["item_id"][
            items[data.user_starts[user + 1] - 1]
        ]
    hits = [
        item == f"c{(int(last_items[user][1:]) + 1) % N_ITEMS}"
        for user, item in zip(table["user"], table["item"], strict=True)
    ]
    assert sum(hits) >= 0.8 * len(users)
    assert torch.is_tensor(loaded.scores(loaded.user_ids(users[:2])))


def test_repeated_evaluations_reuse_the_joined_histories(cycle_root):
    """The [B, L] history lists the model reads are joined at the first evaluation and kept, on the CPU, in the
    loader's reused batches (only joinable features); later evaluations read them and give the same metrics."""
    trainer, _, valid, _ = build(cycle_root, "reuse")
    batch = next(iter(valid))[0]
    field, before = trainer.model.ITEM_SEQ, set(batch.loaded())
    assert field not in before
    expected = batch[torch.arange(len(batch))][field]  # a copy's own join
    first = trainer.evaluate(valid, load_best_model=False)
    kept = batch.loaded()
    assert field in kept and torch.equal(kept[field], expected) and kept[field].device.type == "cpu"
    assert set(kept) - before <= set(batch.columns) - before
    assert trainer.evaluate(valid, load_best_model=False) == first
    assert next(iter(valid))[0] is batch
