"""Knowledge-aware data and trainers: RecBole's processing of .kg / .link on hand-made files, triple batches with
true negative tails, the loader's views, KGTrainer's alternation and exact resume in the middle of it."""

from __future__ import annotations

import itertools
import logging

import numpy as np
import pytest
import torch
from torch import nn

from conftest import entries, write_atomic
from recforge import Config, create_dataset, data_preparation, init_seed
from recforge.data.knowledge_dataset import KnowledgeBasedDataset
from recforge.data.loaders.knowledge import KnowledgeBasedDataLoader
from recforge.errors import DataError, TrainingInterrupted
from recforge.models.knowledge import KnowledgeRecommender
from recforge.registry import get_trainer
from recforge.trainer import Callback, KGATTrainer, KGTrainer, MKRTrainer
from recforge.utils.enum_type import KGDataLoaderState
from test_trainer_resume import InterruptAt

INTER = [
    ("u1", "i1", 1),
    ("u1", "i2", 2),
    ("u1", "i4", 3),
    ("u2", "i2", 1),
    ("u2", "i3", 2),
    ("u2", "i4", 3),
    ("u3", "i1", 1),
    ("u3", "i3", 2),
    ("u3", "i5", 3),  # i5 has no link: this interaction is dropped
    ("u4", "i4", 1),
    ("u4", "i1", 2),
    ("u4", "i3", 3),
]
LINK = [("i3", "e3"), ("i1", "e1"), ("i2", "e2"), ("i4", "e4"), ("i9", "e9")]  # i9: no interaction, dropped
KG = [
    ("e1", "genre", "g_a"),
    ("e2", "genre", "g_a"),
    ("e3", "genre", "g_b"),
    ("e4", "genre", "g_b"),
    ("e1", "sequel", "e2"),
    ("g_a", "broader", "g_top"),
    ("e9", "genre", "g_b"),
]


@pytest.fixture
def kg_path(tmp_path):
    write_atomic(tmp_path, "kgtiny", "inter", ["user_id:token", "item_id:token", "timestamp:float"], INTER)
    write_atomic(tmp_path, "kgtiny", "link", ["item_id:token", "entity_id:token"], LINK)
    write_atomic(tmp_path, "kgtiny", "kg", ["head_id:token", "relation_id:token", "tail_id:token"], KG)
    return tmp_path


class Recorder(KnowledgeRecommender):
    """A knowledge-aware model that records which loss ran on which batch columns, in which epoch."""

    uses_kg_batches = True

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.user = nn.Embedding(self.n_users, 4)
        self.entity = nn.Embedding(self.n_entities, 4)
        self.relation = nn.Embedding(self.n_relations, 4)
        self.calls: list[tuple[str, frozenset]] = []

    def calculate_loss(self, batch):
        self.calls.append(("rec", frozenset(batch.keys())))
        user = self.user(batch[self.USER_ID])
        pos, neg = self.entity(batch[self.ITEM_ID]), self.entity(batch[self.NEG_ITEM_ID])
        loss = -torch.nn.functional.logsigmoid((user * (pos - neg)).sum(-1)).mean()
        if self.HEAD_ENTITY_ID in batch:
            loss = loss + self.calculate_kg_loss(batch, record=False)
        return torch.nn.functional.dropout(loss, 0.1, self.training)

    def calculate_kg_loss(self, batch, record=True):
        if record:
            self.calls.append(("kg", frozenset(batch.keys())))
        head, relation, tail, neg = self.kg_batch(batch)
        h, r = self.entity(head), self.relation(relation)
        pos_d = ((h + r - self.entity(tail)) ** 2).sum(-1)
        neg_d = ((h + r - self.entity(neg)) ** 2).sum(-1)
        return -torch.nn.functional.logsigmoid(neg_d - pos_d).mean()

    def full_sort_predict(self, batch):
        return self.user(batch[self.USER_ID]) @ self.entity.weight[: self.n_items].T


def kg_config(path, model=Recorder, **overrides):
    values = {
        "data_path": str(path),
        "checkpoint_dir": str(path / "saved"),
        "show_progress": False,
        "data_cache": False,
        "load_col": {
            "inter": ["user_id", "item_id", "timestamp"],
            "kg": ["head_id", "relation_id", "tail_id"],
            "link": ["item_id", "entity_id"],
        },
        "eval_args": {"split": {"RS": [0.6, 0.2, 0.2]}, "order": "TO"},
        "topk": [2],
        "valid_metric": "Recall@2",
        "train_batch_size": 3,
        "learning_rate": 0.05,
        **overrides,
    }
    return Config(model, "kgtiny", config_dict=values, cmd_args=[])


def test_ids_follow_recboles_merge_of_items_and_entities(kg_path, caplog):
    with caplog.at_level(logging.INFO, logger="recforge"):
        dataset = create_dataset(kg_config(kg_path))
    assert isinstance(dataset, KnowledgeBasedDataset)
    assert "filtering removed 1 from .inter: interactions whose item has no .link entry" in caplog.text
    # Items by first appearance among the interactions left; all of them are linked, so the order stays.
    assert list(dataset.field2id_token["item_id"]) == ["[PAD]", "i1", "i2", "i4", "i3"]
    # Entity i is item i (by its entity token); the other entities follow in order of first appearance (heads, then
    # tails); e9 lost its link (its item has no interaction) and is an ordinary entity.
    assert list(dataset.field2id_token["entity_id"]) == [
        "[PAD]", "e1", "e2", "e4", "e3", "g_a", "e9", "g_b", "g_top",
    ]  # fmt: skip
    assert dataset.item2entity == {"i1": "e1", "i2": "e2", "i4": "e4", "i3": "e3"}
    assert list(dataset.field2id_token["relation_id"]) == ["[PAD]", "genre", "sequel", "broader", "[UI-Relation]"]
    assert dataset.entity_num == 9 and dataset.relation_num == 5 and dataset.inter_num == 11
    tokens = dataset.field2id_token["entity_id"]
    triples = {(tokens[h], dataset.field2id_token["relation_id"][r], tokens[t]) for h, r, t in zip(
        dataset.head_entities, dataset.relations, dataset.tail_entities, strict=True
    )}  # fmt: skip
    assert triples == set(KG)


def test_unlinked_items_come_first_and_are_virtual_entities(kg_path):
    # An .item file lists i7 (no link): it keeps an item id, before the linked items, and is its own entity.
    years = [("i7", 1999), ("i1", 2000), ("i2", 2001), ("i3", 2002), ("i4", 2003)]
    write_atomic(kg_path, "kgtiny", "item", ["item_id:token", "year:float"], years)
    dataset = create_dataset(kg_config(kg_path, load_col=None))
    items = list(dataset.field2id_token["item_id"])
    assert items == ["[PAD]", "i7", "i1", "i2", "i4", "i3"]
    assert list(dataset.field2id_token["entity_id"][:6]) == ["[PAD]", "i7", "e1", "e2", "e4", "e3"]


def test_reverse_relations_and_the_collaborative_graph(kg_path):
    dataset = create_dataset(kg_config(kg_path, kg_reverse_r=True))
    relations = list(dataset.field2id_token["relation_id"])
    assert relations == ["[PAD]", "genre", "sequel", "broader", "genre_r", "sequel_r", "broader_r", "[UI-Relation]"]
    n = len(KG) - 1  # the e9 triple stays (e9 is an entity), all 7 triples and their reverses
    assert len(dataset.head_entities) == 2 * (n + 1)
    assert np.array_equal(dataset.head_entities[n + 1 :], dataset.tail_entities[: n + 1])
    assert np.array_equal(dataset.relations[n + 1 :], dataset.relations[: n + 1] + 3)
    ckg = dataset.ckg_graph("coo", "relation_id")
    assert ckg.shape == (dataset.user_num + dataset.entity_num,) * 2
    ui = ckg.data == dataset.relation_num - 1
    assert ui.sum() == 2 * dataset.inter_num  # both directions of every interaction
    assert dataset.kg_graph("csr").shape == (dataset.entity_num, dataset.entity_num)


def test_triple_count_filters_reach_a_fixed_point(kg_path):
    dataset = create_dataset(kg_config(kg_path, entity_kg_num_interval="[2,inf)"))
    # g_top (1 triple) goes, then g_a... keeps 3; e9 (1 triple) goes; the link of e9 was already out.
    tokens = dataset.field2id_token["entity_id"]
    kept = {(tokens[h], tokens[t]) for h, t in zip(dataset.head_entities, dataset.tail_entities, strict=True)}
    assert ("g_a", "g_top") not in kept and ("e9", "g_b") not in kept
    assert ("e1", "g_a") in kept and ("e1", "e2") in kept


def test_repeated_links_keep_the_first_with_a_warning(kg_path, caplog):
    write_atomic(kg_path, "kgtiny", "link", ["item_id:token", "entity_id:token"], [*LINK, ("i1", "e2")])
    with caplog.at_level(logging.WARNING, logger="recforge"):
        dataset = create_dataset(kg_config(kg_path))
    assert "kgtiny.link: 1 links repeat an item of an earlier link (first at line 7)" in caplog.text
    assert dataset.item2entity["i1"] == "e1"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"load_col": {"inter": ["user_id", "item_id"]}},
            "config key 'load_col' has no 'kg' entry, but Recorder needs",
        ),
        ("no kg", "kgtiny.kg: file not found (Recorder needs a knowledge graph: head_id, relation_id, tail_id)"),
        ("no link", "kgtiny.link: file not found (Recorder needs the links of items to entities"),
        ("unlinked", "no interaction is left: none of their items has a link to the knowledge graph"),
    ],
)
def test_missing_knowledge_is_a_clear_error(kg_path, change, message):
    overrides = change if isinstance(change, dict) else {}
    if change == "no kg":
        (kg_path / "kgtiny" / "kgtiny.kg").unlink()
    if change == "no link":
        (kg_path / "kgtiny" / "kgtiny.link").unlink()
    if change == "unlinked":
        write_atomic(kg_path, "kgtiny", "link", ["item_id:token", "entity_id:token"], [("i9", "e9")])
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        create_dataset(kg_config(kg_path, **overrides))


def test_the_processed_knowledge_graph_is_cached(kg_path, tmp_path, monkeypatch):
    monkeypatch.setenv("RECFORGE_CACHE_DIR", str(tmp_path / "cache"))
    fresh = create_dataset(kg_config(kg_path, data_cache=True))
    cached = create_dataset(kg_config(kg_path, data_cache=True))
    assert len(list(entries(tmp_path / "cache" / "datasets" / "kgtiny"))) == 1
    for field in fresh.kg_feat:
        assert np.array_equal(fresh.kg_feat[field], cached.kg_feat[field])
    assert cached.item2entity == fresh.item2entity and cached.relation_num == fresh.relation_num
    assert list(cached.field2id_token["entity_id"]) == list(fresh.field2id_token["entity_id"])


def test_triple_batches_have_true_negative_tails_and_replay_by_seed(kg_path):
    config = kg_config(kg_path, train_batch_size=4)
    train, _, _ = data_preparation(config, create_dataset(config))
    assert isinstance(train, KnowledgeBasedDataLoader)
    dataset = train.dataset
    true_pairs = set(zip(dataset.head_entities.tolist(), dataset.tail_entities.tolist(), strict=True))
    first = [dict(b) for b in train.views["kg"]]
    assert sum(len(b["head_id"]) for b in first) == len(KG)  # every triple once per pass
    for _ in range(20):
        for batch in train.views["kg"]:
            negatives = batch["neg_tail_id"]
            assert ((negatives >= 1) & (negatives < dataset.entity_num)).all()
            assert not any(
                (h, t) in true_pairs for h, t in zip(batch["head_id"].tolist(), negatives.tolist(), strict=True)
            )
    again, _, _ = data_preparation(config, create_dataset(config))
    replay = [dict(b) for b in again.views["kg"]]
    assert all(torch.equal(a[k], b[k]) for a, b in zip(first, replay, strict=True) for k in a)


def test_loader_modes_and_merged_batches(kg_path):
    config = kg_config(kg_path)
    train, _, _ = data_preparation(config, create_dataset(config))
    merged = next(iter(train.views["rskg"]))
    assert {"user_id", "item_id", "neg_item_id", "head_id", "relation_id", "tail_id", "neg_tail_id"} <= set(merged)
    assert "head_id" not in next(iter(train))  # interactions until a mode is set
    train.set_mode(KGDataLoaderState.KG)
    assert set(next(iter(train))) == {"head_id", "relation_id", "tail_id", "neg_tail_id"}
    assert len(train) == len(train.views["kg"]) == 3  # 7 triples, batches of 3
    train.set_mode(KGDataLoaderState.RSKG)
    assert len(list(train)) == len(train.views["rs"])  # the triples cycle under the interaction batches
    with pytest.raises(ValueError, match="set_mode takes a KGDataLoaderState"):
        train.set_mode("KG")


def fit(kg_path, trainer_cls=KGTrainer, callbacks=(), resume=None, seed=2020, run="run", **overrides):
    config = kg_config(kg_path, **overrides)
    init_seed(seed)
    train, valid, test = data_preparation(config, create_dataset(config))
    model = Recorder(config, train.dataset)
    trainer = trainer_cls(config, model, run_dir=kg_path / run, callbacks=callbacks)
    if resume is not None:
        trainer.resume_checkpoint(resume)
    trainer.fit(train, valid, verbose=False)
    return model, trainer, test


class Calls(Callback):
    def __init__(self):
        self.per_epoch = {}

    def on_train_end(self, trainer, epoch, loss):
        self.per_epoch[epoch] = [name for name, _ in trainer.model.calls]
        trainer.model.calls.clear()


def test_kg_trainer_alternates_or_merges(kg_path):
    calls = Calls()
    fit(kg_path, callbacks=[calls], epochs=5, train_rec_step=2, train_kg_step=1)
    assert [set(calls.per_epoch[e]) for e in range(5)] == [{"rec"}, {"rec"}, {"kg"}, {"rec"}, {"rec"}]
    merged = Calls()
    model, _, _ = fit(kg_path, callbacks=[merged], epochs=2)
    assert set(merged.per_epoch[0]) == {"rec"}  # RecBole's default: one loss on interaction + triple batches


def test_kg_trainer_skips_triples_for_models_that_read_none(kg_path, monkeypatch):
    monkeypatch.setattr(Recorder, "uses_kg_batches", False)
    model, trainer, _ = fit(kg_path, epochs=1)
    assert trainer.build_objectives()[0].data == "rs"


def test_kgat_and_mkr_trainers_run_their_schedules(kg_path, monkeypatch):
    monkeypatch.setattr(
        Recorder, "update_attentive_A", lambda self: self.calls.append(("A", frozenset())), raising=False
    )
    calls = Calls()
    fit(kg_path, KGATTrainer, callbacks=[calls], epochs=2)
    assert [name for name, _ in itertools.groupby(calls.per_epoch[1])] == ["rec", "kg", "A"]
    monkeypatch.setattr(Recorder, "calculate_rs_loss", Recorder.calculate_loss, raising=False)
    calls = Calls()
    fit(kg_path, MKRTrainer, callbacks=[calls], epochs=4, kge_interval=3)
    assert [("kg" in calls.per_epoch[e]) for e in range(4)] == [True, False, False, True]
    assert get_trainer(Recorder) is KGTrainer


def test_resume_in_the_middle_of_an_alternation_is_exact(kg_path):
    from test_trainer_resume import assert_same, summary

    settings = {"epochs": 6, "train_rec_step": 2, "train_kg_step": 2}
    _, straight, test = fit(kg_path, run="straight", **settings)
    expected = summary(straight, test)
    with pytest.raises(TrainingInterrupted):
        fit(kg_path, callbacks=[InterruptAt(2)], run="cut", **settings)  # after the first KG epoch
    last = kg_path / "cut" / "checkpoints" / "last.pth"
    _, resumed, test = fit(kg_path, resume=last, seed=7, run="cut", **settings)
    assert_same(summary(resumed, test), expected)
