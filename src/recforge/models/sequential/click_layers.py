"""The layers of the click-through sequential models DIN and DIEN (RecBole's ``ContextSeqEmbLayer``,
``SequenceAttLayer``, ``InterestExtractorNetwork``, ``InterestEvolvingLayer``, ``DynamicRNN``, ``AUGRUCell``)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from recforge.data.features.fields import feature_fields
from recforge.models.context.fields import FieldEmbedding, FieldInputs, mlp_layers


class FeatureTable(nn.Module):
    """The features of users or items as one vector each: ``forward(ids [...]) -> [..., F * d]`` (the id itself and
    every loaded column of ``.user`` / ``.item``: token, token_seq pooled by ``pooling``, float / float_seq of
    ``numerical_features`` as value x vector), RecBole's ``ContextSeqEmbLayer`` for one side."""

    def __init__(self, dataset, config, source: str, size: int, pooling: str) -> None:
        super().__init__()
        numerical = list(config["numerical_features"] or [])
        fields = [f for f in feature_fields(dataset, config, floats=numerical) if f.source == source]
        self.inputs = FieldInputs(dataset, fields)
        dims = {f.name: dataset.num(f.name) for f in fields if f.type.startswith("token")}
        self.embedding = FieldEmbedding(self.inputs.fields, dims, size, pooling)
        self.num_fields = len(fields)
        self.id_field = dataset.uid_field if source == "user" else dataset.iid_field

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        flat = ids.reshape(-1)
        embedded = self.embedding(self.inputs({self.inputs.uid_field: flat, self.inputs.iid_field: flat}))
        return embedded.reshape(*ids.shape, -1)


class SequenceAttention(nn.Module):
    """RecBole's SequenceAttLayer: each history position's weight for a query is ``dense(MLP([q, k, q - k, q * k]))
    / sqrt(H)``; padding weighs 0 (``softmax``: -inf, then a softmax over the positions). Returns the weights
    [B, 1, T] (``return_weights``) or their sum of the keys [B, 1, H]."""

    def __init__(self, sizes: list[int], activation: str, softmax: bool, return_weights: bool) -> None:
        super().__init__()
        self.att_mlp_layers = mlp_layers(sizes, 0.0, activation)
        self.dense = nn.Linear(sizes[-1], 1)
        self.softmax, self.return_weights = softmax, return_weights

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, keys_length: torch.Tensor) -> torch.Tensor:
        hidden, steps = queries.shape[-1], keys.shape[1]
        queries = queries.unsqueeze(1).expand(-1, steps, -1)
        scores = self.dense(self.att_mlp_layers(torch.cat([queries, keys, queries - keys, queries * keys], -1)))
        padding = torch.arange(steps, device=keys.device).unsqueeze(0) >= keys_length.unsqueeze(1)
        scores = scores.squeeze(-1).masked_fill(padding, -math.inf if self.softmax else 0.0).unsqueeze(1)
        scores = scores / hidden**0.5
        if self.softmax:
            scores = torch.softmax(scores, dim=2)
        return scores if self.return_weights else scores @ keys


class InterestExtractor(nn.Module):
    """DIEN's interest extractor: a GRU over the history (packed: padding never enters), and the auxiliary loss
    that tells each state's next clicked item from its negative with a linear network (RecBole's has no
    activations): BCE with logits, averaged over the (state, next item) pairs of every history."""

    def __init__(self, size: int, mlp_sizes: list[int]) -> None:
        super().__init__()
        self.gru = nn.GRU(size, size, batch_first=True)
        self.auxiliary_net = mlp_layers(mlp_sizes, 0.0, "none")

    def forward(
        self, keys: torch.Tensor, keys_length: torch.Tensor, negative_keys: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(states [B, T, H] (0 at padding), auxiliary loss)`` of histories [B, T, H] and their negatives."""
        packed = pack_padded_sequence(keys, keys_length.cpu(), batch_first=True, enforce_sorted=False)
        states, _ = pad_packed_sequence(self.gru(packed)[0], batch_first=True, total_length=keys.shape[1])
        pairs = torch.arange(keys.shape[1] - 1, device=keys.device).unsqueeze(0) < (keys_length - 1).unsqueeze(1)
        before = states[:, :-1][pairs]
        click = self.auxiliary_net(torch.cat([before, keys[:, 1:][pairs]], -1))
        no_click = self.auxiliary_net(torch.cat([before, negative_keys[:, 1:][pairs]], -1))
        logits = torch.cat([click, no_click]).squeeze(-1)
        labels = torch.cat([torch.ones_like(click), torch.zeros_like(no_click)]).squeeze(-1)
        return states, F.binary_cross_entropy_with_logits(logits, labels)


class AttentionGRUCell(nn.Module):
    """RecBole's AGRU / AUGRU cell: a GRU step whose update is the attention score (AGRU) or the update gate scaled by
    it (AUGRU). Weights start N(0, 1), biases 0 (RecBole's ``randn`` / ``zeros``, kept by its initialisation)."""

    def __init__(self, input_size: int, hidden_size: int, update_gate: bool) -> None:
        super().__init__()
        self.weight_ih = nn.Parameter(torch.randn(3 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.randn(3 * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.zeros(3 * hidden_size))
        self.bias_hh = nn.Parameter(torch.zeros(3 * hidden_size))
        self.update_gate = update_gate

    def forward(self, x: torch.Tensor, hidden: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
        reset_i, update_i, new_i = F.linear(x, self.weight_ih, self.bias_ih).chunk(3, 1)
        reset_h, update_h, new_h = F.linear(hidden, self.weight_hh, self.bias_hh).chunk(3, 1)
        new = torch.tanh(new_i + torch.sigmoid(reset_i + reset_h) * new_h)
        update = attention.unsqueeze(1)
        if self.update_gate:
            update = update * torch.sigmoid(update_i + update_h)
        return (1 - update) * hidden + update * new


class InterestEvolving(nn.Module):
    """DIEN's interest evolving layer over the extractor's states [B, T, H] for a target [B, H] -> [B, H]:
    GRU (attention-pooled GRU outputs), AIGRU (a GRU over attention-scaled states, its last state), AGRU / AUGRU
    (an attention-gated GRU, its state at each history's last item). The attention is ``SequenceAttention`` with
    sigmoid MLP activations and a softmax over the positions (RecBole's defaults for DIEN)."""

    def __init__(self, size: int, att_sizes: list[int], gru: str) -> None:
        super().__init__()
        self.gru_type = gru
        self.attention_layer = SequenceAttention(att_sizes, "sigmoid", softmax=True, return_weights=gru != "GRU")
        if gru in ("GRU", "AIGRU"):
            self.dynamic_rnn = nn.GRU(size, size, batch_first=True)
        else:
            self.dynamic_rnn = AttentionGRUCell(size, size, update_gate=gru == "AUGRU")

    def forward(self, target: torch.Tensor, states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if self.gru_type == "GRU":
            packed = pack_padded_sequence(states, lengths.cpu(), batch_first=True, enforce_sorted=False)
            steps = states.shape[1]
            outputs, _ = pad_packed_sequence(self.dynamic_rnn(packed)[0], batch_first=True, total_length=steps)
            return self.attention_layer(target, outputs, lengths).squeeze(1)
        weights = self.attention_layer(target, states, lengths).squeeze(1)  # [B, T]
        if self.gru_type == "AIGRU":
            packed = pack_padded_sequence(states * weights.unsqueeze(-1), lengths.cpu(), True, enforce_sorted=False)
            return self.dynamic_rnn(packed)[1].squeeze(0)
        return self._attention_gru(states, weights, lengths)

    def _attention_gru(self, states: torch.Tensor, weights: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The cell over each history's positions, its state after the last one [B, H] (a row past its length keeps
        its state: RecBole's packed sequence)."""
        hidden = states.new_zeros(states.shape[0], states.shape[2])
        for t in range(int(lengths.max())):
            stepped = self.dynamic_rnn(states[:, t], hidden, weights[:, t])
            hidden = torch.where((t < lengths).unsqueeze(1), stepped, hidden)
        return hidden
