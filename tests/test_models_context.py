"""Context-aware models: which fields they see, their embeddings and scores against hand computations, and the
cross networks against RecBole's formulation."""

import math

import numpy as np
import pytest
import torch

from feature_data import feature_config, write_feature_data
from recforge import create_dataset, data_preparation
from recforge.data.columns import SeqColumn
from recforge.data.interaction import Interaction
from recforge.registry import get_model_class, get_trainer
from recforge.utils import init_seed

NUMERICAL = ["hour", "age", "price", "vector"]


def built(tmp_path, model, **extra):
    write_feature_data(tmp_path)
    config = feature_config(tmp_path, model, **extra)
    train, valid, test = data_preparation(config, create_dataset(config))
    init_seed(config["seed"])
    return config, train, valid, test, get_model_class(model)(config, train.dataset)


def test_fields_follow_recbole_rules(tmp_path):
    _, _, _, _, model = built(tmp_path, "FM")  # numerical_features: [] (RecBole's default): no float field
    assert model.field_names == ["hobbies", "genres", "user_id", "item_id", "device", "gender"]
    _, _, _, _, model = built(tmp_path, "FM", numerical_features=NUMERICAL)
    assert model.field_names == [
        "hobbies",
        "genres",
        "user_id",
        "item_id",
        "device",
        "gender",
        "vector",
        "hour",
        "age",
        "price",
    ]
    ranking = {
        "eval_args": {"split": {"RS": [0.7, 0.15, 0.15]}, "mode": "full"},
        "metrics": ["Recall"],
        "valid_metric": "Recall@10",
    }
    _, _, _, _, model = built(tmp_path, "FM", numerical_features=NUMERICAL, **ranking)
    assert "device" not in model.field_names and "hour" not in model.field_names  # no context for candidates


def hand_fields(model, ds, users, items, columns):
    """Per row, the list of (kind, value) of every field, read from the data set's tables directly."""
    rows = []
    for r, (u, i) in enumerate(zip(users, items, strict=True)):
        fields = []
        for name in model.field_names:
            kind = ds.field2type[name] if name not in ("user_id", "item_id") else "token"
            if name == "user_id":
                value = u
            elif name == "item_id":
                value = i
            elif name in columns:
                value = float(columns[name][r]) if kind == "float" else int(columns[name][r])
            else:
                table = ds.user_feat if name in ds.user_feat else ds.item_feat
                column, index = table[name], u if name in ds.user_feat else i
                if isinstance(column, SeqColumn):
                    value = column.values[column.offsets[index] : column.offsets[index + 1]].tolist()
                else:
                    value = column[index].item()
            fields.append((name, kind, value))
        rows.append(fields)
    return rows


def field_vectors(model, ds, table: str, fields) -> list[torch.Tensor]:
    """e_f of each field by hand: one token table with each field's ids after the previous fields' (RecBole's
    offsets), a table per token_seq field (mean or sum over the ids present), value x row 2k + 1 for floats."""
    emb = getattr(model, table)
    offsets, position = {}, 0
    for name, kind, _ in fields:
        if kind == "token":
            offsets[name] = position
            position += ds.num(name)
    seq_names = [n for n, k, _ in fields if k == "token_seq"]
    float_names = [n for n, k, _ in fields if k == "float"]
    out = []
    for name, kind, value in fields:
        if kind == "token":
            out.append(emb.token.weight[offsets[name] + value])
        elif kind == "token_seq":
            ids = [v for v in value if v != 0]
            pooled = emb.token_seq[seq_names.index(name)].weight[ids].sum(0)
            out.append(pooled / (len(ids) + 1e-8) if emb.seq_pool == "mean" else pooled)
        elif kind == "float":
            out.append(value * emb.numeric.weight[2 * float_names.index(name) + 1])
        else:
            out.append(sum(v * emb.numeric_seq[0].weight[1] for v in value) / (len(value) + 1e-8))
    return out


def test_fm_and_lr_score_as_computed_by_hand(tmp_path):
    config, train, _, test, fm = built(tmp_path, "FM", numerical_features=NUMERICAL)
    ds = train.dataset
    columns = {k: v[:6] for k, v in test.dataset.inter_feat.items() if not isinstance(v, SeqColumn)}
    batch = Interaction({k: torch.as_tensor(v) for k, v in columns.items()})
    with torch.no_grad():
        logits = fm.logit(batch)
        for row, fields in enumerate(hand_fields(fm, ds, columns["user_id"], columns["item_id"], columns)):
            vectors = field_vectors(fm, ds, "embedding", fields)
            pairs = sum(float(vectors[a] @ vectors[b]) for a in range(len(vectors)) for b in range(a + 1, len(vectors)))
            first = sum(float(w[0]) for w in field_vectors(fm, ds, "first_order", fields)) + float(fm.first_order_bias)
            assert math.isclose(float(logits[row]), first + pairs, rel_tol=1e-5, abs_tol=1e-5), row
        lr = get_model_class("LR")(config, ds)
        lr.first_order.load_state_dict(fm.first_order.state_dict())
        assert torch.allclose(lr.logit(batch), fm.first_order_linear(batch))
        assert torch.allclose(fm.predict(batch), torch.sigmoid(logits))


def test_context_models_learn_the_feature_data(tmp_path):
    config, train, valid, test, model = built(tmp_path, "DeepFM", epochs=30, learning_rate=0.01, train_batch_size=64)
    trainer = get_trainer(type(model))(config, model)
    trainer.fit(train, valid, verbose=False, saved=False)
    assert trainer.evaluate(test)["auc"] > 0.8  # the labels follow gender x first genre (0.5 by chance)


def recbole_cross(x0: torch.Tensor, model) -> torch.Tensor:
    """DCNV2's cross network as RecBole writes it ([B, D, 1] columns, a loop over experts)."""
    x_0 = x0.unsqueeze(2)
    x_l = x_0
    for i in range(len(model.cross_b)):
        bias = model.cross_b[i].unsqueeze(1)
        if not model.mixed:
            x_l = x_0 * (torch.matmul(model.cross_w[i], x_l) + bias) + x_l
            continue
        experts, gates = [], []
        for e in range(len(model.gating)):
            gates.append(model.gating[e](x_l.squeeze(2)))
            v = torch.tanh(torch.matmul(model.cross_v[i][e].T, x_l))
            c = torch.tanh(torch.matmul(model.cross_c[i][e], v))
            u = torch.matmul(model.cross_u[i][e], c)
            experts.append((x_0 * (u + bias)).squeeze(2))
        moe = torch.matmul(torch.stack(experts, 2), torch.softmax(torch.stack(gates, 1), dim=1))
        x_l = moe + x_l
    return x_l.squeeze(2)


@pytest.mark.parametrize("mixed", [False, True])
def test_dcnv2_cross_network_equals_recbole_formulation(tmp_path, mixed):
    _, _, _, _, model = built(tmp_path, "DCNV2", mixed=mixed, low_rank=8, expert_num=3)
    x0 = torch.randn(5, model.num_feature_field * model.embedding_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(model._cross(x0), recbole_cross(x0, model), rtol=1e-4, atol=1e-4)
    weights = [*model.cross_u, *model.cross_v, *model.cross_c] if mixed else list(model.cross_w)
    expected = 2.0 * sum(float(torch.sqrt((w.detach() ** 2).sum())) for w in weights)
    assert math.isclose(float(model.regularisation().detach()), expected, rel_tol=1e-5)


def test_dcn_cross_layer_and_regularisation(tmp_path):
    _, _, _, _, model = built(tmp_path, "DCN", cross_layer_num=2)
    batch = Interaction(
        {
            "user_id": torch.tensor([1, 2]),
            "item_id": torch.tensor([3, 4]),
            "device": torch.tensor([1, 2]),
            "hour": torch.tensor([1.0, 2.0]),
        }
    )
    model.eval()
    with torch.no_grad():
        x0 = model.embed(batch).flatten(1)
        x = x0
        for w, b in zip(model.cross_w, model.cross_b, strict=True):
            x = x0 * torch.tensordot(x, w, dims=([1], [0])).unsqueeze(1) + b + x
        expected = model.predict_layer(torch.cat([x, model.mlp(x0)], 1)).squeeze(1)
        assert torch.allclose(model.logit(batch), expected)
    assert math.isclose(
        float(model.regularisation().detach()), 2.0 * sum(float(w.detach().norm()) for w in model.cross_w), rel_tol=1e-6
    )


def test_bf16_training_of_a_context_model(tmp_path):
    config, train, valid, test, model = built(tmp_path, "WideDeep", epochs=2, precision="bf16")
    trainer = get_trainer(type(model))(config, model)
    trainer.fit(train, valid, verbose=False, saved=False)
    assert all(np.isfinite(v) for v in trainer.train_loss_dict.values())
    assert 0.0 <= trainer.evaluate(test)["auc"] <= 1.0
