"""RecBole's other context-aware models (FwFM, AFM, PNN, FFM, xDeepFM, AutoInt, FiGNN, DSSM, EulerNet, KD_DAGFM)
against RecBole's formulations written out, on field vectors computed by hand from the data set's tables; their
regularisation terms, initialisations and (KD_DAGFM) training phases."""

import itertools
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from feature_data import write_feature_data
from recforge.data.columns import SeqColumn
from recforge.data.interaction import Interaction
from recforge.errors import ConfigError
from test_models_context import NUMERICAL, built, field_vectors, hand_fields

GROUPS = {  # field groups by source, listed in another order than the fields'
    "item": ["item_id", "genres", "price", "vector"],
    "user": ["user_id", "gender", "hobbies", "age"],
    "context": ["device", "hour"],
}


def rows_of(tmp_path, model, **extra):
    """The model on 'feat' with every numerical field, six test rows as a batch, and per row the fields' values
    read by hand."""
    _, train, _, test, net = built(tmp_path, model, numerical_features=NUMERICAL, **extra)
    columns = {k: v[:6] for k, v in test.dataset.inter_feat.items() if not isinstance(v, SeqColumn)}
    batch = Interaction({k: torch.as_tensor(v) for k, v in columns.items()})
    fields = hand_fields(net, train.dataset, columns["user_id"], columns["item_id"], columns)
    net.eval()
    return net, train.dataset, batch, fields


def first_order(net, ds, fields) -> float:
    return sum(float(w[0]) for w in field_vectors(net, ds, "first_order", fields)) + float(net.first_order_bias)


def recbole_pairs(n: int) -> list[tuple[int, int]]:
    """RecBole's double loop over the pairs (its build_cross / fwfm_layer / FFM order)."""
    return [(i, j) for i in range(n - 1) for j in range(i + 1, n)]


@pytest.mark.parametrize("groups", [None, GROUPS])
def test_fwfm_equals_recbole_formulation(tmp_path, groups):
    net, ds, batch, rows = rows_of(tmp_path, "FwFM", fields=groups)
    names = net.field_names
    if groups is None:
        group_of = {name: k for k, name in enumerate(names)}
        assert net.pair_weight.shape == (10, 10)
    else:  # groups numbered in the order they are listed
        group_of = {name: k for k, members in enumerate(groups.values()) for name in members}
        assert net.pair_weight.shape == (3, 3)
    r = net.pair_weight.detach()
    with torch.no_grad():
        logits = net.logit(batch)
        for row, fields in enumerate(rows):
            e = field_vectors(net, ds, "embedding", fields)
            pairs = sum(
                float((e[i] * e[j] * r[group_of[names[i]], group_of[names[j]]]).sum()) for i, j in recbole_pairs(10)
            )
            assert math.isclose(float(logits[row]), first_order(net, ds, fields) + pairs, rel_tol=1e-5, abs_tol=1e-4)
    # The pair weights are learned and saved (RecBole's are a plain tensor, never trained).
    assert "pair_weight" in net.state_dict() and any(p is net.pair_weight for p in net.parameters())


def test_fwfm_and_ffm_refuse_a_feature_in_no_group(tmp_path):
    incomplete = {"item": ["item_id", "genres", "price", "vector"], "user": ["user_id"], "other": ["nothing_here"]}
    for model in ("FwFM", "FFM"):
        with pytest.raises(ConfigError, match=r"'fields': the features \['hobbies', 'device', 'gender'.*no group"):
            built(tmp_path, model, numerical_features=NUMERICAL, fields=incomplete)


def test_afm_equals_recbole_formulation(tmp_path):
    net, ds, batch, rows = rows_of(tmp_path, "AFM")
    W, h, p = net.attention.weight.detach(), net.attention_h.detach(), net.p.detach()
    assert W.shape == (25, 10) and h.shape == (25,)
    with torch.no_grad():
        logits = net.logit(batch)
        for row, fields in enumerate(rows):
            e = field_vectors(net, ds, "embedding", fields)
            products = [e[i] * e[j] for i, j in recbole_pairs(10)]
            signals = torch.stack([(torch.relu(W @ x) * h).sum() for x in products])
            attention = torch.exp(signals - signals.max()) / torch.exp(signals - signals.max()).sum()
            pooled = sum(a * x for a, x in zip(attention, products, strict=True))
            expected = first_order(net, ds, fields) + float((pooled * p).sum())
            assert math.isclose(float(logits[row]), expected, rel_tol=1e-5, abs_tol=1e-4)
    expected_reg = 2.0 * math.sqrt(float((W**2).sum()))
    assert math.isclose(float(net.regularisation().detach()), expected_reg, rel_tol=1e-6)


def recbole_outer(feat_emb: torch.Tensor, kernel: torch.Tensor, n: int) -> torch.Tensor:
    """RecBole's OuterProductLayer.forward."""
    row, col = zip(*recbole_pairs(n), strict=True)
    p, q = feat_emb[:, list(row)], feat_emb[:, list(col)]
    p = (p.unsqueeze(1) * kernel.unsqueeze(0)).sum(dim=-1)  # [B, d, P]
    return (p.transpose(2, 1) * q).sum(dim=-1)


@pytest.mark.parametrize(("inner", "outer"), [(True, False), (True, True), (False, True), (False, False)])
def test_pnn_equals_recbole_formulation(tmp_path, inner, outer):
    net, ds, batch, rows = rows_of(tmp_path, "PNN", use_inner=inner, use_outer=outer, reg_weight=0.5)
    with torch.no_grad():
        x = torch.stack([torch.stack(field_vectors(net, ds, "embedding", fields)) for fields in rows])  # [6, F, d]
        parts = [x.flatten(1)]
        if inner:
            parts.append(torch.stack([(x[:, i] * x[:, j]).sum(1) for i, j in recbole_pairs(10)], dim=1))
        if outer:
            assert net.kernel.shape == (10, 45, 10)
            parts.append(recbole_outer(x, net.kernel, 10))
        hidden = torch.cat(parts, dim=1)
        assert hidden.shape[1] == 100 + 45 * (inner + outer)
        for layer in [m for m in net.mlp if isinstance(m, torch.nn.Linear)]:
            hidden = torch.relu(hidden @ layer.weight.T + layer.bias)
        expected = (hidden @ net.predict_layer.weight.T + net.predict_layer.bias).squeeze(1)
        assert torch.allclose(net.logit(batch), expected, rtol=1e-4, atol=1e-4)
    weights = [net.mlp[1].weight, net.mlp[4].weight, net.mlp[7].weight]  # Dropout, Linear, ReLU per layer
    expected_reg = 0.5 * sum(math.sqrt(float((w.detach() ** 2).sum())) for w in weights)
    assert math.isclose(float(net.regularisation().detach()), expected_reg, rel_tol=1e-6)


@pytest.mark.parametrize("groups", [None, GROUPS])
def test_ffm_equals_recbole_formulation(tmp_path, groups):
    net, ds, batch, rows = rows_of(tmp_path, "FFM", fields=groups)
    names = net.field_names
    if groups is None:
        group_of = {name: k for k, name in enumerate(names)}
    else:
        group_of = {name: k for k, members in enumerate(groups.values()) for name in members}
    tables = [net.embedding, *net.field_aware]
    assert len(tables) == len(set(group_of.values()))
    with torch.no_grad():
        logits = net.logit(batch)
        for row, fields in enumerate(rows):
            # v[g][f]: feature f's vector for group g, each group's tables read by hand
            v = [field_vectors(SimpleNamespace(embedding=table), ds, "embedding", fields) for table in tables]
            pairs = sum(
                float((v[group_of[names[j]]][i] * v[group_of[names[i]]][j]).sum()) for i, j in recbole_pairs(10)
            )
            assert math.isclose(float(logits[row]), first_order(net, ds, fields) + pairs, rel_tol=1e-5, abs_tol=1e-4)
    # token_seq tables are field-aware too (RecBole's share one list across the fields)
    assert net.field_aware[0].token_seq[0].weight.data_ptr() != net.embedding.token_seq[0].weight.data_ptr()
    assert not torch.equal(net.field_aware[0].token_seq[0].weight, net.embedding.token_seq[0].weight)


def recbole_cin(x: torch.Tensor, net) -> torch.Tensor:
    """RecBole's compressed_interaction_network (einsum, view, Conv1d, ReLU, torch.split)."""
    batch, m, d = x.shape
    hidden_layers, final = [x], []
    field_nums = [m]
    for i, size in enumerate(net.cin_layer_size):
        z = torch.einsum("bhd,bmd->bhmd", hidden_layers[-1], hidden_layers[0]).view(batch, m * field_nums[i], d)
        out = torch.relu(torch.nn.functional.conv1d(z, net.cin[i].weight, net.cin[i].bias))
        if net.direct:
            direct, nxt = out, out
            field_nums.append(size)
        elif i != len(net.cin_layer_size) - 1:
            nxt, direct = torch.split(out, 2 * [size // 2], 1)
            field_nums.append(size // 2)
        else:
            direct, nxt = out, 0
        final.append(direct)
        hidden_layers.append(nxt)
    return torch.cat(final, dim=1).sum(-1)


@pytest.mark.parametrize(
    ("direct", "sizes", "used", "out"), [(False, [7, 6, 5], [6, 6, 4], 10), (True, [7, 5], [7, 5], 12)]
)
def test_xdeepfm_equals_recbole_formulation(tmp_path, direct, sizes, used, out, caplog):
    net, ds, batch, rows = rows_of(tmp_path, "xDeepFM", direct=direct, cin_layer_size=sizes, mlp_hidden_size=[8, 4])
    assert net.cin_layer_size == used and net.cin_linear.in_features == out
    assert ("CIN layer sizes before the last must be even" in caplog.text) is not direct
    with torch.no_grad():
        x = torch.stack([torch.stack(field_vectors(net, ds, "embedding", fields)) for fields in rows])
        assert torch.allclose(net.compressed_interaction(x), recbole_cin(x, net), rtol=1e-4, atol=1e-4)
        deep = x.flatten(1)
        for layer in [m for m in net.mlp if isinstance(m, torch.nn.Linear)]:
            deep = torch.relu(deep @ layer.weight.T + layer.bias)  # ReLU after the 1-unit layer too
        cin = recbole_cin(x, net) @ net.cin_linear.weight.T + net.cin_linear.bias
        first = torch.tensor([first_order(net, ds, fields) for fields in rows])
        assert torch.allclose(net.logit(batch), first + (cin + deep).squeeze(1), rtol=1e-4, atol=1e-3)
    weights = [m.weight for m in net.mlp if isinstance(m, torch.nn.Linear)] + [c.weight for c in net.cin]
    first_tables = [net.first_order.token.weight, *[t.weight for t in net.first_order.token_seq]]
    first_tables += [net.first_order.numeric.weight, net.first_order.numeric_seq[0].weight]
    expected = 5e-4 * sum(math.sqrt(float((w.detach() ** 2).sum())) for w in weights + first_tables)
    assert math.isclose(float(net.regularisation().detach()), expected, rel_tol=1e-5)


def attention_by_hand(x: torch.Tensor, mha: torch.nn.MultiheadAttention) -> torch.Tensor:
    """Multi-head self-attention over [B, F, A] written out (eval mode: no dropout)."""
    batch, fields, size = x.shape
    heads = mha.num_heads
    q, k, v = (x @ mha.in_proj_weight.T + mha.in_proj_bias).chunk(3, dim=-1)

    def split(t):
        return t.view(batch, fields, heads, size // heads).transpose(1, 2)  # [B, H, F, A / H]

    weights = torch.softmax(split(q) @ split(k).transpose(-1, -2) / math.sqrt(size // heads), dim=-1)
    out = (weights @ split(v)).transpose(1, 2).reshape(batch, fields, size)
    return out @ mha.out_proj.weight.T + mha.out_proj.bias


def linear(x, layer):
    return x @ layer.weight.T + (layer.bias if layer.bias is not None else 0)


@pytest.mark.parametrize("residual", [False, True])
def test_autoint_equals_recbole_formulation(tmp_path, residual):
    net, ds, batch, rows = rows_of(tmp_path, "AutoInt", has_residual=residual, n_layers=2, mlp_hidden_size=[8, 4])
    assert len(net.self_attns) == 2 and (net.v_res_embedding is not None) is residual
    with torch.no_grad():
        x = torch.stack([torch.stack(field_vectors(net, ds, "embedding", fields)) for fields in rows])
        cross = linear(x, net.att_embedding)
        for mha in net.self_attns:
            cross = attention_by_hand(cross, mha)
        if residual:
            cross = cross + linear(x, net.v_res_embedding)
        attention = linear(torch.relu(cross).reshape(6, -1), net.attn_fc).squeeze(1)
        deep = x.flatten(1)
        for layer in [m for m in net.mlp if isinstance(m, torch.nn.Linear)]:
            deep = torch.relu(linear(deep, layer))
        deep = linear(deep, net.deep_predict_layer).squeeze(1)
        first = torch.tensor([first_order(net, ds, fields) for fields in rows])
        assert torch.allclose(net.logit(batch), first + attention + deep, rtol=1e-4, atol=1e-4)


def test_attention_heads_must_divide_the_size(tmp_path):
    for model in ("AutoInt", "FiGNN"):
        with pytest.raises(ConfigError, match="'num_heads': 3 does not divide attention_size 16"):
            built(tmp_path, model, num_heads=3)


def recbole_fignn(x: torch.Tensor, net) -> torch.Tensor:
    """RecBole's fignn_layer (eval mode) with the attention written out."""
    fields, size = x.shape[1], net.att_embedding.out_features
    att = torch.relu(attention_by_hand(linear(x, net.att_embedding), net.self_attn) + linear(x, net.v_res_embedding))
    src, dst = zip(*itertools.product(range(fields), repeat=2), strict=True)
    concat = torch.cat([att[:, list(src)], att[:, list(dst)]], dim=-1)
    alpha = torch.nn.functional.leaky_relu(linear(concat, net.W_attn), 0.01).view(-1, fields, fields)
    graph = torch.softmax(alpha.masked_fill(torch.eye(fields).bool(), float("-inf")), dim=-1)
    h = att
    for layer in net.gnn:
        h_out = torch.matmul(layer.W_out, h.unsqueeze(-1)).squeeze(-1)
        a = torch.matmul(layer.W_in, torch.bmm(graph, h_out).unsqueeze(-1)).squeeze(-1) + layer.bias_p
        h = net.gru_cell(a.view(-1, size), h.reshape(-1, size)).view(-1, fields, size) + att
    score = linear(h, net.mlp1).squeeze(-1)
    return (linear(h.flatten(1), net.mlp2) * score).sum(dim=1)


@pytest.mark.parametrize("layers", [1, 3])
def test_fignn_equals_recbole_formulation(tmp_path, layers):
    net, ds, batch, rows = rows_of(tmp_path, "FiGNN", n_layers=layers)
    assert len(net.gnn) == layers - 1
    with torch.no_grad():
        x = torch.stack([torch.stack(field_vectors(net, ds, "embedding", fields)) for fields in rows])
        expected = recbole_fignn(x, net)
        assert torch.allclose(net.logit(batch), expected, rtol=1e-4, atol=1e-4)
        graph = net.graph(
            torch.relu(net.self_attn(*[linear(x, net.att_embedding)] * 3)[0] + linear(x, net.v_res_embedding))
        )
        assert (
            torch.allclose(graph.sum(-1), torch.ones(6, 10)) and float(graph.diagonal(dim1=1, dim2=2).abs().max()) == 0
        )


def tower_by_hand(x: torch.Tensor, mlp) -> torch.Tensor:
    """RecBole's MLPLayers in eval mode: Linear, BatchNorm1d (running statistics), tanh per layer."""
    layers = list(mlp)
    for linear_layer, norm in zip(layers[1::4], layers[2::4], strict=True):
        x = x @ linear_layer.weight.T + linear_layer.bias
        x = (x - norm.running_mean) / torch.sqrt(norm.running_var + norm.eps) * norm.weight + norm.bias
        x = torch.tanh(x)
    return x


def test_dssm_equals_recbole_formulation(tmp_path):
    net, ds, batch, rows = rows_of(tmp_path, "DSSM", mlp_hidden_size=[16, 8])
    # The towers: the user's fields and the item's, in RecBole's order (token_seq, token, float_seq, float);
    # the context columns device and hour in neither.
    assert net.field_names == ["hobbies", "genres", "user_id", "item_id", "gender", "vector", "age", "price"]
    user_names, item_names = ["hobbies", "user_id", "gender", "age"], ["genres", "item_id", "vector", "price"]
    assert net.user_mlp[1].in_features == 40 and net.item_mlp[1].in_features == 40
    net.train()
    with torch.no_grad():
        net.logit(batch)  # moves the batch norms' running statistics away from their start
    net.eval()
    with torch.no_grad():
        for row, fields in enumerate(rows):
            e = dict(zip(net.field_names, field_vectors(net, ds, "embedding", fields), strict=True))
            user = tower_by_hand(torch.cat([e[n] for n in user_names]).unsqueeze(0), net.user_mlp)
            item = tower_by_hand(torch.cat([e[n] for n in item_names]).unsqueeze(0), net.item_mlp)
            cosine = float((user * item).sum() / (user.norm() * item.norm()))
            assert math.isclose(float(net.logit(batch)[row]), cosine, rel_tol=1e-4, abs_tol=1e-5)
        assert torch.allclose(net.predict(batch), torch.sigmoid(net.logit(batch)))
    assert float(net.user_mlp[2].running_mean.abs().sum()) > 0
    with pytest.raises(ConfigError, match="'double_tower'"):
        built(tmp_path, "DSSM", double_tower=False)


def recbole_euler_layer(r, p, layer, d):
    """RecBole's EulerInteractionLayer.forward in eval mode."""
    lam, theta = r**2 + p**2 + 1e-8, torch.atan2(p, r)
    lam, theta = lam.reshape(lam.shape[0], -1, d), theta.reshape(theta.shape[0], -1, d)
    lam = 0.5 * torch.log(lam)
    lam, theta = torch.transpose(lam, -2, -1), torch.transpose(theta, -2, -1)
    lam, theta = lam @ layer.inter_orders + layer.bias_lam, theta @ layer.inter_orders + layer.bias_theta
    lam = torch.exp(lam)
    lam, theta = torch.transpose(lam, -2, -1), torch.transpose(theta, -2, -1)
    r, p = r.reshape(r.shape[0], -1), p.reshape(p.shape[0], -1)
    r, p = torch.relu(linear(r, layer.im)), torch.relu(linear(p, layer.im))
    r, p = r.reshape(r.shape[0], -1, d), p.reshape(p.shape[0], -1, d)
    o_r, o_p = r + lam * torch.cos(theta), p + lam * torch.sin(theta)
    if layer.apply_norm:
        o_r = torch.nn.functional.layer_norm(o_r, [d], layer.norm_r.weight, layer.norm_r.bias)
        o_p = torch.nn.functional.layer_norm(o_p, [d], layer.norm_p.weight, layer.norm_p.bias)
    return o_r, o_p


@pytest.mark.parametrize(("orders", "norm"), [([30], False), ([7, 5], True)])
def test_eulernet_equals_recbole_formulation(tmp_path, orders, norm):
    net, ds, batch, rows = rows_of(tmp_path, "EulerNet", order_list=orders, apply_norm=norm)
    assert [layer.inter_orders.shape for layer in net.layers] == list(zip([10, *orders], orders, strict=False))
    # RecBole's init: nearly one-hot columns of inter_orders, N(0, 0.1) implicit weights, N(0, 0.01) output map
    assert torch.allclose(net.layers[0].inter_orders.sum(0), torch.ones(orders[0]))
    im, reg = net.layers[0].im.weight.detach(), net.reg.weight.detach()
    assert 0.08 < float(im.std()) < 0.12 and float(net.layers[0].im.bias.detach().abs().sum()) == 0
    assert 0.005 < float(reg.std()) < 0.015
    with torch.no_grad():
        net.mu.mul_(torch.linspace(0.5, 1.5, 10).view(1, 10, 1))  # a mu that is not all ones
        x = torch.stack([torch.stack(field_vectors(net, ds, "embedding", fields)) for fields in rows])
        r, p = net.mu * torch.cos(x), net.mu * torch.sin(x)
        for layer in net.layers:
            r, p = recbole_euler_layer(r, p, layer, 16)
        expected = (linear(r.reshape(6, -1), net.reg) + linear(p.reshape(6, -1), net.reg)).squeeze(1)
        assert torch.allclose(net.logit(batch), expected, rtol=1e-4, atol=1e-5)
    params = [*net.layers.parameters(), net.mu, net.reg.weight, net.reg.bias]
    assert len(params) == 9 * len(orders) + 3  # the unused layer norms count, as in RecBole's RegularLoss
    expected_reg = 1e-5 * sum(math.sqrt(float((w.detach() ** 2).sum())) for w in params)
    assert math.isclose(float(net.regularisation().detach()), expected_reg, rel_tol=1e-5)


def recbole_dagfm(feature: torch.Tensor, student, kind: str) -> torch.Tensor:
    """RecBole's DAGFM.FeatureInteraction logits, its adjacency built by its loops."""
    fields, size = feature.shape[1], feature.shape[2]
    adj = torch.zeros(fields, fields, size)
    for i in range(fields):
        for j in range(i, fields):
            adj[i, j, :] += 1
    h0 = ht = student.connect_layer @ feature
    state = [torch.sum(h0, dim=-1)]
    for i in range(len(student.p)):
        if kind == "inner":
            ht = h0 * torch.einsum("bfd,fsd->bsd", ht, student.p[i] * adj)
        else:
            term = torch.einsum("bfd,fsd->bfs", ht, student.p[i] * adj)
            ht = h0 * torch.einsum("bfs,fsd->bsd", term, student.q[i])
        state.append(torch.sum(ht, dim=-1))
    return linear(torch.cat(state, dim=-1), student.linear).squeeze(-1)


def recbole_crossnet(x_0: torch.Tensor, teacher) -> torch.Tensor:
    x_0 = x_0.reshape(x_0.shape[0], -1).unsqueeze(dim=2)
    x_l = x_0
    for w, b in zip(teacher.cross_layer_w, teacher.bias, strict=True):
        x_l = x_0 * (torch.matmul(w, x_l) + b.unsqueeze(1)) + x_l
    return linear(x_l.squeeze(dim=2), teacher.linear).squeeze(-1)


def recbole_cin_teacher(feature: torch.Tensor, teacher) -> torch.Tensor:
    base, x, p = feature, feature, []
    for conv in teacher.cin:
        product = (x[:, :, None, :] * base[:, None, :, :]).reshape(x.shape[0], x.shape[1] * base.shape[1], -1)
        x = torch.nn.functional.conv1d(product, conv.weight, conv.bias)
        p.append(torch.sum(x, dim=-1))
    return (torch.cat(p, dim=-1) @ teacher.linear).squeeze(-1)


@pytest.mark.parametrize(("teacher", "kind"), [("CrossNet", "outer"), ("CIN", "inner")])
def test_kd_dagfm_networks_equal_recbole_formulation(tmp_path, teacher, kind):
    net, ds, batch, rows = rows_of(tmp_path, "KD_DAGFM", teacher=teacher, type=kind, t_cin=[6, 4], embedding_size=4)
    with torch.no_grad():
        net.student_network.connect_layer.add_(0.1 * torch.randn(10, 10))  # a DAG layer other than the identity
        x = torch.stack([torch.stack(field_vectors(net, ds, "embedding", fields)) for fields in rows])
        student = recbole_dagfm(x, net.student_network, kind)
        assert torch.allclose(net.student_network(x), student, rtol=1e-4, atol=1e-4)
        expected = (
            recbole_crossnet(x, net.teacher_network)
            if teacher == "CrossNet"
            else recbole_cin_teacher(x, net.teacher_network)
        )
        assert torch.allclose(
            net.logit(batch), expected, rtol=1e-4, atol=1e-3
        )  # teacher_training scores by the teacher
    assert len(net.student_network.p) == 3 and hasattr(net.student_network, "q") is (kind == "outer")
    if teacher == "CrossNet":
        assert len(net.teacher_network.cross_layer_w) == 3  # t_depth
    else:
        assert [c.out_channels for c in net.teacher_network.cin] == [6, 4] and net.teacher_network.linear.shape == (
            10,
            1,
        )


def kd_run(root, phase, **extra):
    from recforge.quick_start import run

    write_feature_data(root)
    values = {
        "data_path": str(root),
        "checkpoint_dir": str(root / phase),
        "load_col": None,
        "threshold": {"rating": 3},
        "eval_args": {"split": {"RS": [0.7, 0.15, 0.15]}, "order": "RO", "group_by": None, "mode": "labeled"},
        "show_progress": False,
        "data_cache": False,
        "epochs": 1,
        "embedding_size": 4,
        "phase": phase,
        **extra,
    }
    result = run("KD_DAGFM", "feat", config_dict=values, cmd_args={}, verbose=False)
    best = Path(result["run_dir"]) / "checkpoints" / "best.pth"
    return str(best), torch.load(best, weights_only=True)["model"]


def test_kd_dagfm_phases_train_what_recbole_trains(tmp_path):
    teacher_path, after_teacher = kd_run(tmp_path, "teacher_training")
    distilled_path, after_distillation = kd_run(tmp_path, "distillation", warm_up=teacher_path)
    tuned_path, after_finetuning = kd_run(tmp_path, "finetuning", warm_up=distilled_path)

    def same(a, b, prefix):
        return all(torch.equal(a[k], b[k]) for k in a if k.startswith(prefix))

    # Distillation: the student learns; the embeddings and the teacher stay as the teacher run left them.
    assert same(after_teacher, after_distillation, "embedding.") and same(after_teacher, after_distillation, "teacher")
    assert not same(after_teacher, after_distillation, "student_network.")
    # Fine-tuning: the student and the embeddings learn; the teacher is not used.
    assert not same(after_distillation, after_finetuning, "embedding.")
    assert not same(after_distillation, after_finetuning, "student_network.")
    assert same(after_distillation, after_finetuning, "teacher")


def test_kd_dagfm_distillation_loss_is_recboles(tmp_path):
    teacher_path, _ = kd_run(tmp_path, "teacher_training")
    _, train, _, _, net = built(tmp_path, "KD_DAGFM", phase="distillation", warm_up=teacher_path, embedding_size=4)
    batch = next(iter(train))
    embeddings = net.embed(batch).detach()
    student, teacher = net.student_network(embeddings), net.teacher_network(embeddings).detach()
    label = batch["label"].float()
    s_pred = torch.sigmoid(student)  # RecBole's BCELoss on sigmoid outputs
    ctr = -(label * torch.log(s_pred) + (1 - label) * torch.log(1 - s_pred)).mean()
    expected = 0.1 * ctr + 921.6 * ((teacher - student) ** 2).mean()
    loss = net.calculate_loss(batch)
    assert math.isclose(float(loss.detach()), float(expected.detach()), rel_tol=1e-5)
    loss.backward()
    assert net.embedding.token.weight.grad is None and all(p.grad is None for p in net.teacher_network.parameters())
    assert net.student_network.linear.weight.grad is not None
    net.eval()
    assert torch.allclose(net.predict(batch), torch.sigmoid(student))  # the student scores


def test_kd_dagfm_warm_up_errors_are_one_clear_line(tmp_path):
    with pytest.raises(ConfigError, match="'warm_up': empty; phase distillation starts from .* teacher_training run"):
        built(tmp_path, "KD_DAGFM", phase="distillation")
    with pytest.raises(ConfigError, match="'warm_up': 'nope.pth' does not exist; phase finetuning .* distillation run"):
        built(tmp_path, "KD_DAGFM", phase="finetuning", warm_up="nope.pth")
    cin_path, _ = kd_run(tmp_path, "teacher_training", teacher="CIN", t_cin=[4])
    with pytest.raises(ConfigError, match=r"'warm_up': .* does not fit this KD_DAGFM"):
        built(tmp_path, "KD_DAGFM", phase="distillation", warm_up=cin_path, embedding_size=4)


def test_discretised_floats_are_embedded_per_bucket(tmp_path):
    buckets = {"age": {"method": "ED", "bucket": 4}, "price": {"method": "LD"}, "vector": {"method": "ED", "bucket": 3}}
    net, ds, batch, rows = rows_of(tmp_path, "FM", discretization=buckets)
    names = net.field_names
    assert ds.field2bucketnum == {"age": 5, "price": 9, "vector": 4}
    # RecBole's float tables: hour (values) 2 rows, then one row per bucket of age and price
    assert net.embedding.numeric.weight.shape == (2 + 5 + 9, 10) and net.first_order.numeric.weight.shape == (16, 1)
    assert net.embedding.numeric_seq[0].weight.shape == (4, 10)

    def vectors(table, fields):
        out = field_vectors(SimpleNamespace(embedding=table), ds, "embedding", fields)  # the token fields
        for k, (name, _, value) in enumerate(fields):
            if name == "hour":
                out[k] = value * table.numeric.weight[1]
            elif name in ("age", "price"):  # the bucket's row: offset 2 (hour), then 2 + 5 (age)
                out[k] = table.numeric.weight[{"age": 2, "price": 7}[name] + int(value)]
            elif name == "vector":  # each value's bucket row, averaged
                out[k] = sum(table.numeric_seq[0].weight[int(v)] for v in value) / (len(value) + 1e-8)
        return out

    with torch.no_grad():
        logits = net.logit(batch)
        for row, fields in enumerate(rows):
            assert [n for n, _, _ in fields] == names
            e = vectors(net.embedding, fields)
            pairs = sum(float(e[i] @ e[j]) for i, j in recbole_pairs(10))
            first = sum(float(w[0]) for w in vectors(net.first_order, fields)) + float(net.first_order_bias)
            assert math.isclose(float(logits[row]), first + pairs, rel_tol=1e-5, abs_tol=1e-4)
