"""Self-attention over feature fields: AutoInt and FiGNN (RecBole's definitions and defaults).

Both project the [B, F, d] field embeddings to [B, F, A] (``attention_size``) and let the fields attend to each
other with ``torch.nn.MultiheadAttention`` (its in-projection Xavier-uniform as PyTorch initialises it, every
linear layer Xavier-normal with zero biases as RecBole's init).
"""

from __future__ import annotations

import torch
from torch import nn

from recforge.config.types import Bool, Float, Int, Key, ListOf
from recforge.errors import ConfigError
from recforge.models.context.base import EMBEDDING_KEY, ContextRecommender, mlp_keys
from recforge.models.context.fields import mlp_layers
from recforge.registry import register_model


def attention_keys(layers: int) -> tuple[Key, ...]:
    """``attention_size`` / ``n_layers`` / ``num_heads`` with a model's defaults."""
    return (
        Key("attention_size", Int(minimum=1), 16, "Size A of the fields' attention vectors."),
        Key("n_layers", Int(minimum=1), layers, "Number of attention (AutoInt) or graph (FiGNN) layers."),
        Key("num_heads", Int(minimum=1), 2, "Attention heads (they divide attention_size)."),
    )


def self_attention(size: int, heads: int, dropout: float) -> nn.MultiheadAttention:
    """Multi-head self-attention over [B, F, size] fields; ``heads`` must divide ``size``."""
    if size % heads:
        raise ConfigError(f"config key 'num_heads': {heads} does not divide attention_size {size}")
    return nn.MultiheadAttention(size, heads, dropout=dropout, batch_first=True)


@register_model
class AutoInt(ContextRecommender):
    """AutoInt (Song et al., CIKM 2019): first order + linear(ReLU(stacked self-attention over the fields
    [+ a linear residual of the embeddings])) + an MLP over the concatenated embeddings.

    ``dropout_probs``: attention dropout, MLP dropout, and a third rate RecBole declares but never applies
    (read for compatibility, without effect). ``has_residual`` is not in RecBole's AutoInt.yaml, so RecBole reads
    none and adds no residual: the default here.
    """

    hyper_parameters = (
        EMBEDDING_KEY,
        *attention_keys(3),
        Key(
            "dropout_probs",
            ListOf(Float(minimum=0.0, maximum=1.0), min_length=3),
            [0.2, 0.2, 0.2],
            "Dropout of the attention weights, of the MLP, and a third without effect (RecBole's).",
        ),
        mlp_keys([128, 128], 0.0)[0],
        Key("has_residual", Bool(), False, "Add a linear map of the embeddings to the attention output."),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        size, heads = config["attention_size"], config["num_heads"]
        attention_dropout, mlp_dropout, _ = config["dropout_probs"][:3]
        hidden = config["mlp_hidden_size"]
        self.att_embedding = nn.Linear(self.embedding_size, size)
        self.self_attns = nn.ModuleList(
            self_attention(size, heads, attention_dropout) for _ in range(config["n_layers"])
        )
        self.v_res_embedding = nn.Linear(self.embedding_size, size) if config["has_residual"] else None
        self.attn_fc = nn.Linear(self.num_feature_field * size, 1)
        self.mlp = mlp_layers([self.num_feature_field * self.embedding_size, *hidden], mlp_dropout)
        self.deep_predict_layer = nn.Linear(hidden[-1], 1)
        self.init_weights()

    def attention_logit(self, embeddings: torch.Tensor) -> torch.Tensor:
        """[B] logit of the attention part for [B, F, d] embeddings."""
        cross = self.att_embedding(embeddings)
        for attention in self.self_attns:
            cross = attention(cross, cross, cross, need_weights=False)[0]
        if self.v_res_embedding is not None:
            cross = cross + self.v_res_embedding(embeddings)
        return self.attn_fc(torch.relu(cross).flatten(1)).squeeze(-1)

    def logit(self, interaction) -> torch.Tensor:
        embeddings = self.embed(interaction)
        deep = self.deep_predict_layer(self.mlp(embeddings.flatten(1))).squeeze(-1)
        return self.first_order_linear(interaction) + self.attention_logit(embeddings) + deep


class GraphLayer(nn.Module):
    """FiGNN's message passing: a_i = W_in,i sum_j g_ij W_out,j h_j + b, with a d x d matrix per field
    (Xavier-normal over the [F, A, A] tensors, as RecBole's)."""

    def __init__(self, fields: int, size: int) -> None:
        super().__init__()
        self.W_in = nn.Parameter(nn.init.xavier_normal_(torch.empty(fields, size, size)))
        self.W_out = nn.Parameter(nn.init.xavier_normal_(torch.empty(fields, size, size)))
        self.bias_p = nn.Parameter(torch.zeros(size))

    def forward(self, graph: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """[B, F, A] messages for the [B, F, F] graph and [B, F, A] states."""
        sent = torch.einsum("fij,bfj->bfi", self.W_out, h)
        return torch.einsum("fij,bfj->bfi", self.W_in, torch.bmm(graph, sent)) + self.bias_p


@register_model
class FiGNN(ContextRecommender):
    """FiGNN (Li et al., CIKM 2019): the fields, after one self-attention layer with a linear residual and ReLU,
    are the nodes of a complete graph whose edge weights are a softmax over j != i of
    LeakyReLU(w . [h_i, h_j]); ``n_layers`` - 1 steps of GraphLayer messages and a GRU cell update the states (the
    attention output added back after each); the logit is sum_i mlp2(flattened states)_i * mlp1(h_i). No first
    order."""

    hyper_parameters = (
        EMBEDDING_KEY,
        *attention_keys(2),
        Key("hidden_dropout_prob", Float(minimum=0.0, maximum=1.0), 0.2, "Dropout of the projected embeddings."),
        Key("attn_dropout_prob", Float(minimum=0.0, maximum=1.0), 0.2, "Dropout of the attention weights."),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        size, fields = config["attention_size"], self.num_feature_field
        self.dropout = nn.Dropout(config["hidden_dropout_prob"])
        self.att_embedding = nn.Linear(self.embedding_size, size)
        self.self_attn = self_attention(size, config["num_heads"], config["attn_dropout_prob"])
        self.v_res_embedding = nn.Linear(self.embedding_size, size)
        self.gnn = nn.ModuleList(GraphLayer(fields, size) for _ in range(config["n_layers"] - 1))
        self.W_attn = nn.Linear(2 * size, 1, bias=False)
        self.gru_cell = nn.GRUCell(size, size)  # PyTorch's init (RecBole's init looks for nn.GRU only)
        self.mlp1 = nn.Linear(size, 1, bias=False)
        self.mlp2 = nn.Linear(fields * size, fields, bias=False)
        self.register_buffer("diagonal", torch.eye(fields, dtype=torch.bool), persistent=False)
        self.init_weights()

    def graph(self, h: torch.Tensor) -> torch.Tensor:
        """[B, F, F] edge weights of [B, F, A] node states: softmax_j of LeakyReLU(w . [h_i, h_j]), j != i."""
        size = h.shape[-1]
        source = h @ self.W_attn.weight[0, :size]  # [B, F]
        target = h @ self.W_attn.weight[0, size:]
        scores = nn.functional.leaky_relu(source.unsqueeze(2) + target.unsqueeze(1), 0.01)
        return torch.softmax(scores.masked_fill(self.diagonal, float("-inf")), dim=-1)

    def states(self, embeddings: torch.Tensor) -> torch.Tensor:
        """[B, F, A] node states after the attention layer and the graph steps."""
        projected = self.dropout(self.att_embedding(embeddings))
        attended = self.self_attn(projected, projected, projected, need_weights=False)[0]
        attended = torch.relu(attended + self.v_res_embedding(embeddings))
        graph, h = self.graph(attended), attended
        batch, fields, size = attended.shape
        for layer in self.gnn:
            messages = layer(graph, h)
            h = self.gru_cell(messages.reshape(-1, size), h.reshape(-1, size)).view(batch, fields, size)
            h = h + attended
        return h

    def logit(self, interaction) -> torch.Tensor:
        h = self.states(self.embed(interaction))
        return (self.mlp2(h.flatten(1)) * self.mlp1(h).squeeze(-1)).sum(dim=1)
