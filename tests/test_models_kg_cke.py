"""CKE: losses and gradients equal RecBole 1.2.1's formulas (a d x k matrix gathered per triple), bf16 training."""

import torch
import torch.nn.functional as F

from recforge import create_dataset, data_preparation, init_seed
from recforge.models.knowledge.base import project_by_relation
from recforge.registry import get_model_class, get_trainer
from test_models import blocks_config, blocks_path  # noqa: F401


def build(path, **settings):
    config = blocks_config(path, "CKE", train_batch_size=24, kg_embedding_size=5, embedding_size=7, **settings)
    train, valid, _ = data_preparation(config, create_dataset(config))
    init_seed(config["seed"])
    return config, get_model_class("CKE")(config, train.dataset), train, valid


def recbole_losses(model, batch):
    """RecBole's CKE.calculate_loss, written out: per-row gathered TransR matrices, BPRLoss, EmbLoss."""

    def bpr(pos, neg):
        return -torch.log(1e-10 + torch.sigmoid(pos - neg)).mean()

    def emb(*tensors):
        return sum(torch.norm(t, p=2) for t in tensors) / tensors[-1].shape[0]

    user_e = model.user_embedding(batch["user_id"])
    pos_e = model.item_embedding(batch["item_id"]) + model.entity_embedding(batch["item_id"])
    neg_e = model.item_embedding(batch["neg_item_id"]) + model.entity_embedding(batch["neg_item_id"])
    rec = bpr((user_e * pos_e).sum(1), (user_e * neg_e).sum(1))
    r = batch["relation_id"]
    w = model.trans_w(r).view(len(r), model.embedding_size, model.kg_embedding_size)
    h_e, pos_t, neg_t = (
        F.normalize(torch.bmm(model.entity_embedding(batch[f]).unsqueeze(1), w).squeeze(1), p=2, dim=1)
        for f in ("head_id", "tail_id", "neg_tail_id")
    )
    r_e = F.normalize(model.relation_embedding(r), p=2, dim=1)
    kg = bpr(((h_e + r_e - neg_t) ** 2).sum(1), ((h_e + r_e - pos_t) ** 2).sum(1))
    reg = model.reg_weights[0] * emb(user_e, pos_e, neg_e) + model.reg_weights[1] * emb(h_e, r_e, pos_t, neg_t)
    return rec, kg, reg


def test_losses_and_gradients_equal_recboles(blocks_path):  # noqa: F811
    _, model, train, _ = build(blocks_path, reg_weights=[0.3, 0.2])
    batch = next(iter(train.views["rskg"]))
    assert len(batch["head_id"]) > 1 and len(set(batch["relation_id"].tolist())) > 1
    ours = model.calculate_loss(batch)
    theirs = recbole_losses(model, batch)
    for got, want in zip(ours, theirs, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)
    grads = torch.autograd.grad(sum(ours), list(model.parameters()))
    want = torch.autograd.grad(sum(theirs), list(model.parameters()))
    for got, expected in zip(grads, want, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-7)


def test_projection_by_relation_blocks_equals_per_row_matrices():
    generator = torch.Generator().manual_seed(0)
    rows = torch.randn(70, 3, 4, generator=generator)
    relation = torch.randint(0, 5, (70,), generator=generator)
    matrices = torch.randn(5, 4, 6, generator=generator)
    expected = torch.bmm(rows, matrices[relation])
    for block in (1, 4, 32, 128):
        torch.testing.assert_close(project_by_relation(rows, relation, matrices, block), expected)


def test_bf16_trains(blocks_path):  # noqa: F811
    config, model, train, valid = build(blocks_path, precision="bf16", epochs=3)
    trainer = get_trainer(type(model))(config, model)
    trainer.fit(train, valid, verbose=False, saved=False)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert trainer.train_loss_dict and all(
        torch.isfinite(torch.tensor(v)).all() for v in trainer.train_loss_dict.values()
    )
