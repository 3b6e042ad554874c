"""RippleNet: the contract, RecBole's loss row by row, the ripple sets' sampling, bf16, full ranking for any n_hop."""

import itertools
from collections import Counter

import numpy as np
import pytest
import torch

from recforge import create_dataset, data_preparation
from recforge.data.interaction import Interaction
from recforge.models.knowledge import ripplenet
from recforge.models.knowledge.ripplenet import build_ripple_sets, sample_slots
from recforge.registry import get_model_class, get_trainer
from test_models import blocks_config, blocks_path, check_contract  # noqa: F401

SETTINGS = {"learning_rate": 0.01, "epochs": 40, "train_batch_size": 32}


pytestmark = pytest.mark.usefixtures("one_thread")


def setup(path, **settings):
    config = blocks_config(path, "RippleNet", **settings)
    train, valid, test = data_preparation(config, create_dataset(config))
    return config, get_model_class("RippleNet")(config, train.dataset), train, valid


def recbole_loss(model, batch):
    """RecBole 1.2.1's RippleNet.calculate_loss, written out row by row (a d x d matrix gathered per memory)."""
    users, items, labels = batch["user_id"].tolist(), batch["item_id"], batch["label"]
    d, m = model.embedding_size, model.n_memory
    h_list, r_list, t_list = [], [], []
    for hop in range(model.n_hop):
        heads = torch.cat([model.memory_heads[u, hop] for u in users])
        relations = torch.cat([model.memory_relations[u, hop] for u in users])
        tails = torch.cat([model.memory_tails[u, hop] for u in users])
        h_list.append(model.entity_embedding(heads))
        r_list.append(model.relation_embedding(relations))
        t_list.append(model.entity_embedding(tails))
    item_e = model.entity_embedding(items)
    o_list = []
    for hop in range(model.n_hop):
        r_h = torch.bmm(r_list[hop].view(-1, d, d), h_list[hop].unsqueeze(2)).view(-1, m, d)
        probs = torch.softmax(torch.bmm(r_h, item_e.unsqueeze(2)).squeeze(2), dim=1)
        o = torch.sum(t_list[hop].view(-1, m, d) * probs.unsqueeze(2), dim=1)
        item_e = model.transform_matrix(item_e + o)
        o_list.append(o)
    y = o_list[-1]
    for o in o_list[:-1]:
        y = y + o
    scores = torch.sum(item_e * y, dim=1)
    rec = torch.nn.BCEWithLogitsLoss()(scores, labels)
    kge = sum(
        torch.sigmoid(
            (torch.bmm(h_list[k].unsqueeze(1), r_list[k].view(-1, d, d)).squeeze(1) * t_list[k]).sum(1)
        ).mean()
        for k in range(model.n_hop)
    )

    def emb_loss(*tensors):  # RecBole's EmbLoss: sum of norms / the last tensor's rows
        return sum(torch.norm(t, p=2) for t in tensors) / tensors[-1].shape[0]

    reg = sum(emb_loss(h_list[k], t_list[k], r_list[k]) for k in range(model.n_hop))
    reg = reg + emb_loss(model.transform_matrix.weight)
    return scores, rec, -model.kg_weight * kge, model.reg_weight * reg


def test_loss_equals_recboles_formula(blocks_path):  # noqa: F811
    _, model, train, _ = setup(blocks_path, kg_weight=0.5, reg_weight=0.1, embedding_size=8, n_memory=4)
    with torch.no_grad():  # a non-trivial transform matrix
        model.transform_matrix.weight.add_(torch.eye(8))
    batch = next(iter(train))
    assert len(batch["user_id"]) > len(torch.unique(batch["user_id"]))  # users repeat: the count weighting counts
    scores, *parts = recbole_loss(model, batch)
    ours = model.calculate_loss(batch)
    for got, expected in zip(ours, parts, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=0)
    torch.testing.assert_close(model.predict(batch), scores, rtol=1e-5, atol=1e-7)
    assert ours[1] < 0 < ours[2]  # the KG term is subtracted (kg_weight), the L2 term added (reg_weight)


def test_memories_come_from_the_training_items_outwards(blocks_path):  # noqa: F811
    _, model, train, _ = setup(blocks_path, n_memory=4, n_hop=2)
    ds = train.dataset
    kg = set(zip(ds.head_entities.tolist(), ds.relations.tolist(), ds.tail_entities.tolist(), strict=True))
    users, items = ds.inter_feat["user_id"], ds.inter_feat["item_id"]
    assert model.memory_heads.shape == (model.n_users, 2, 4) and "memory_heads" in model.state_dict()
    buffers = (model.memory_heads, model.memory_relations, model.memory_tails)
    expanded = 0
    for user in range(1, model.n_users):
        memories = [list(zip(*(b[user, hop].tolist() for b in buffers), strict=True)) for hop in range(2)]
        # Each user has ~5 training items x 3 triples >= 4 candidates: drawn without replacement, all distinct.
        assert len(set(memories[0])) == 4 and set(memories[0]) <= kg
        assert {h for h, _, _ in memories[0]} <= set(items[users == user].tolist())
        tails = {t for _, _, t in memories[0]}
        if any(h in tails for h, _, _ in kg):
            assert set(memories[1]) <= kg and {h for h, _, _ in memories[1]} <= tails
            expanded += set(memories[1]) != set(memories[0])
        else:  # no fact leaves hop 0's tails: hop 1 repeats hop 0
            assert memories[1] == memories[0]
    # Hop 1 really expands (RecBole's lookup of tensor tails in an int-keyed dict repeats hop 0 for every user).
    assert expanded >= 15
    assert (model.memory_heads[0] == 0).all()  # the padding user has no items


def test_ripple_sets_pad_and_repeat_as_recbole():
    # Item 1 -> entity 4 (two relations), 4 -> 2, 2 -> 6, 6 has no facts; item 3 has no facts.
    heads, relations, tails = (torch.tensor(c) for c in ([1, 1, 4, 2], [1, 2, 3, 1], [4, 4, 2, 6]))
    users, items = torch.tensor([1, 2]), torch.tensor([1, 3])
    generator = torch.Generator().manual_seed(0)
    h, r, t, padded = build_ripple_sets((heads, relations, tails), users, items, 4, 7, 4, 3, generator)
    assert padded == 3  # user 0 (padding), 2 (no facts), 3 (no training items)
    for user in (0, 2, 3):
        assert (h[user] == 0).all() and (r[user] == 0).all() and (t[user] == 0).all()
    assert set(zip(h[1, 0].tolist(), r[1, 0].tolist(), t[1, 0].tolist(), strict=True)) <= {(1, 1, 4), (1, 2, 4)}
    assert (h[1, 1] == 4).all() and (r[1, 1] == 3).all() and (t[1, 1] == 2).all()
    assert (h[1, 2] == 2).all() and (t[1, 2] == 6).all()
    assert torch.equal(torch.stack([h[1, 3], r[1, 3], t[1, 3]]), torch.stack([h[1, 2], r[1, 2], t[1, 2]]))
    again = build_ripple_sets((heads, relations, tails), users, items, 4, 7, 4, 3, torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip((h, r, t), again[:3], strict=True))


def test_slots_are_uniform_with_and_without_replacement():
    generator = torch.Generator().manual_seed(1)
    counts = torch.tensor([5] * 20000 + [2] * 20000 + [0] * 10)
    slots = sample_slots(counts, 3, generator)
    subsets = slots[:20000].sort(dim=1).values
    assert (subsets[:, 0] < subsets[:, 1]).all() and (subsets[:, 1] < subsets[:, 2]).all()  # no repeats
    frequency = Counter(map(tuple, subsets.tolist()))
    assert set(frequency) == set(itertools.combinations(range(5), 3))
    assert all(abs(n - 2000) < 250 for n in frequency.values())  # 10 subsets, each 1/10 (sd 42)
    small = slots[20000:40000]
    assert set(small.flatten().tolist()) == {0, 1} and abs(small.float().mean().item() - 0.5) < 0.01
    assert (small[:, 0] == small[:, 1]).float().mean().item() == pytest.approx(0.5, abs=0.02)  # with replacement
    assert (slots[40000:] == 0).all()


@pytest.mark.parametrize("n_hop", [1, 3])
def test_full_ranking_equals_pairs_for_any_number_of_hops(blocks_path, n_hop, monkeypatch):  # noqa: F811
    _, model, _, _ = setup(blocks_path, n_hop=n_hop, embedding_size=16)
    monkeypatch.setattr(ripplenet, "FULL_SORT_CELLS", model.n_memory * model.n_items * 3)  # blocks of 3 users
    torch.nn.init.normal_(model.transform_matrix.weight, std=0.5)
    torch.nn.init.normal_(model.entity_embedding.weight, std=1.0)
    users = torch.arange(1, model.n_users)
    with torch.no_grad():
        scores = model.full_sort_predict(Interaction({"user_id": users}))
        pairs = {"user_id": users.repeat_interleave(model.n_items), "item_id": torch.arange(model.n_items).repeat(20)}
        expected = model.predict(Interaction(pairs)).view(20, -1)
    assert scores.abs().max() > 1
    torch.testing.assert_close(scores, expected, rtol=1e-4, atol=1e-4)


def test_bf16_trains(blocks_path):  # noqa: F811
    config, model, train, valid = setup(blocks_path, precision="bf16", epochs=3, train_batch_size=32)
    trainer = get_trainer(type(model))(config, model, run_dir=blocks_path / "run")
    trainer.fit(train, valid, verbose=False, saved=False)
    assert len(trainer.train_loss_dict) == 3 and all(np.isfinite(v) for v in trainer.train_loss_dict.values())


def test_the_ripple_sets_follow_the_seed(blocks_path):  # noqa: F811
    first, second = (setup(blocks_path, seed=s)[1] for s in (1, 1))
    other = setup(blocks_path, seed=2)[1]
    assert torch.equal(first.memory_tails, second.memory_tails)
    assert not torch.equal(first.memory_tails, other.memory_tails)
