"""SINE: scores and losses equal RecBole 1.2.1's equations written out per row (concept activation, intention
assignment, attention weighting, interest aggregation) and its prototype regulariser."""

import pytest
import torch
import torch.nn.functional as F

import recforge.models.sequential.sine  # noqa: F401
from recforge.errors import ConfigError
from recforge.registry import get_model_class
from recforge.utils import init_seed
from sequential_data import cycle_config, cycle_loaders, first_batch, write_cycle

BPR = {"loss_type": "BPR", "train_neg_sample_args": {"distribution": "uniform", "sample_num": 1}}


def build(tmp_path, **settings):
    values = {"embedding_size": 6, "prototype_size": 7, "interest_size": 3, **settings}
    config = cycle_config(write_cycle(tmp_path), "SINE", **values)
    train, _, test = cycle_loaders(config)
    init_seed(config["seed"])
    model = get_model_class("SINE")(config, train.dataset)
    with torch.no_grad():  # large values, so that a wrong weight shows
        for name, p in model.named_parameters():
            p.normal_(0.0, 1.0 if p.dim() == 1 or name.endswith("weight") else 6**-0.5)
    return model.eval(), first_batch(train), first_batch(test)


def layer_norm(x, ln):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + ln.eps) * ln.weight + ln.bias


def recbole_user_vector(model, history):
    """SINE.forward for one history [N] (every position, padding included)."""
    x = model.item_embedding.weight[history]  # [N, D]
    z = torch.softmax(torch.tanh(x @ model.w1) @ model.w2, dim=0) @ x  # [D]
    s = model.C.weight @ z  # [L]
    top = torch.topk(s, model.k).indices.flip(0)  # the k best concepts, lowest score first (argsort's tail)
    concepts = model.C.weight[top] * torch.sigmoid(s[top]).unsqueeze(1)  # [k, D]
    assign = torch.softmax(F.normalize(x @ model.w3, dim=1) @ layer_norm(concepts, model.ln2).T, dim=1)  # [N, k]
    interests = []
    for i in range(model.k):
        weight = torch.softmax(torch.tanh(x @ model.w_k_1[i]) @ model.w_k_2[i], dim=0)  # [N]
        interests.append(F.normalize((assign[:, i] * weight) @ x, dim=0))
    interests = torch.stack(interests)  # [k, D]
    prototypes = assign @ concepts  # [N, D]
    pooled = torch.softmax(torch.tanh(prototypes @ model.w3) @ model.w4, dim=0) @ prototypes
    mix = torch.softmax(interests @ layer_norm(pooled, model.ln4) / model.tau, dim=0)
    return mix @ interests


def recbole_scores(model, batch):
    vectors = torch.stack([recbole_user_vector(model, history) for history in batch["item_id_list"]])
    return vectors @ model.item_embedding.weight.T


def test_defaults_and_initialisation(tmp_path):
    config = cycle_config(write_cycle(tmp_path), "SINE")
    init_seed(config["seed"])
    model = get_model_class("SINE")(config, cycle_loaders(config)[0].dataset)
    assert (model.D, model.L, model.k, model.tau, model.reg_loss_ratio) == (64, 50, 3, 0.1, 0.5)
    assert model.loss_type == "CE" and model.ln2.eps == 1e-12
    assert model.w_k_1.shape == (3, 64, 64) and model.w_k_2.shape == (3, 64) and model.w2.shape == (64,)
    assert abs(model.w_k_1.std().item() - 0.01) < 0.001
    assert abs(model.C.weight.std().item() - (2 / (50 + 64)) ** 0.5) < 0.02  # Xavier-normal
    assert model.ln4.weight.eq(1).all() and model.ln4.bias.eq(0).all()


def test_scores_equal_recboles_equations(tmp_path):
    model, train_batch, test_batch = build(tmp_path)
    for batch in (train_batch, test_batch):
        with torch.no_grad():
            scores = model.full_sort_predict(batch)
            want = recbole_scores(model, batch)
            torch.testing.assert_close(scores, want, rtol=1e-5, atol=1e-5)
            picked = model.predict(batch)
        torch.testing.assert_close(picked, want.gather(1, batch["item_id"].view(-1, 1)).squeeze(1))
    assert scores.std() > 0.1


def test_ce_and_bpr_losses_have_no_regulariser(tmp_path):
    model, batch, _ = build(tmp_path)
    logits = recbole_scores(model, batch)
    ce = -torch.log_softmax(logits, dim=1).gather(1, batch["item_id"].view(-1, 1)).mean()
    torch.testing.assert_close(model.calculate_loss(batch), ce, rtol=1e-5, atol=1e-5)
    model, batch, _ = build(tmp_path / "bpr", **BPR)
    scores = recbole_scores(model, batch)
    pos, neg = (scores.gather(1, batch[key].view(-1, 1)) for key in ("item_id", "neg_item_id"))
    torch.testing.assert_close(model.calculate_loss(batch), -torch.log(1e-10 + torch.sigmoid(pos - neg)).mean())


def test_nll_loss_adds_the_prototype_covariance(tmp_path):
    model, batch, _ = build(tmp_path, loss_type="NLL", reg_loss_ratio=0.25)
    logits = recbole_scores(model, batch)
    nll = -torch.log_softmax(logits, dim=1).gather(1, batch["item_id"].view(-1, 1)).mean()
    centred = model.C.weight - model.C.weight.mean(1, keepdim=True)
    covariance = centred @ centred.T / model.D
    off_diagonal = covariance - torch.diag(torch.diag(covariance))
    reg = (off_diagonal**2).sum() / 2
    assert reg > 0.1
    torch.testing.assert_close(model.calculate_loss(batch), nll + 0.25 * reg, rtol=1e-5, atol=1e-5)


def test_more_interests_than_prototypes_is_refused(tmp_path):
    config = cycle_config(write_cycle(tmp_path), "SINE", prototype_size=2, interest_size=3)
    with pytest.raises(ConfigError, match="interest_size"):
        get_model_class("SINE")(config, cycle_loaders(config)[0].dataset)
