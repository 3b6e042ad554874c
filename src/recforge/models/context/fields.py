"""Feature fields as embeddings, RecBole's way, for the context-aware models.

``FieldInputs`` gathers a batch's feature values: user and item columns from id-indexed tables kept as buffers (so
training rows, labelled rows and ranking candidates all get them the same way, on the model's device), the
interaction's context columns from the batch. ``FieldEmbedding`` turns them into ``[B, F, d]``:

- token: one shared table over every token field's ids (RecBole's offsets trick), no padding row;
- token_seq: a table per field, pooled over the ids present (mean for embeddings, sum for the first-order part; the
  feature-aware sequential models choose mean, sum or max);
- float (only the ``numerical_features``): ``value * e_field``;
- float_seq (only the ``numerical_features``): ``value * e_field`` averaged over the values present;
- a float / float_seq column that ``discretization`` bucketed (``FeatureField.buckets``): its bucket's own vector
  (averaged over the values present), RecBole's ``[1, bucket]`` lookup.

Fields are ordered as RecBole concatenates them: token_seq, token, float_seq, float.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch import nn

from recforge.data.columns import SeqColumn
from recforge.data.features.fields import FeatureField

KIND_ORDER = ("token_seq", "token", "float_seq", "float")


class FieldInputs(nn.Module):
    """Per field, the values of a batch of pairs: token [B] long, token_seq [B, L] long (0 pads), float [B],
    float_seq ([B, L] float, [B, L] bool mask)."""

    def __init__(self, dataset, fields: list[FeatureField]) -> None:
        super().__init__()
        self.uid_field, self.iid_field = dataset.uid_field, dataset.iid_field
        self.fields = list(fields)
        self.fields.sort(key=lambda f: KIND_ORDER.index(f.type))
        tables = {"user": dataset.user_feat, "item": dataset.item_feat}
        self._buffers_of: dict[str, tuple[str, ...]] = {}
        for i, field in enumerate(self.fields):
            if field.source == "inter" or field.name in (self.uid_field, self.iid_field):
                continue
            column = tables[field.source][field.name]
            names = (f"values_{i}",)
            if isinstance(column, SeqColumn):
                padded = column.padded()
                dtype = torch.long if field.type == "token_seq" else torch.float32
                self.register_buffer(names[0], torch.as_tensor(padded).to(dtype), persistent=False)
                if field.type == "float_seq":
                    names = (*names, f"mask_{i}")
                    mask = np.arange(padded.shape[1])[None, :] < column.lengths[:, None]
                    self.register_buffer(names[1], torch.as_tensor(mask), persistent=False)
            else:
                dtype = torch.long if field.type == "token" else torch.float32
                self.register_buffer(names[0], torch.as_tensor(np.asarray(column)).to(dtype), persistent=False)
            self._buffers_of[field.name] = names

    def forward(self, interaction) -> list[torch.Tensor | tuple[torch.Tensor, torch.Tensor]]:
        users, items = interaction[self.uid_field], interaction[self.iid_field]
        out: list[torch.Tensor | tuple[torch.Tensor, torch.Tensor]] = []
        for field in self.fields:
            if field.name == self.uid_field:
                out.append(users)
            elif field.name == self.iid_field:
                out.append(items)
            elif field.source == "inter":
                value = interaction[field.name]
                out.append(value.long() if field.type == "token" else value.float())
            else:
                ids = users if field.source == "user" else items
                names = self._buffers_of[field.name]
                values = getattr(self, names[0])[ids]
                out.append((values, getattr(self, names[1])[ids]) if len(names) == 2 else values)
        return out


class FieldEmbedding(nn.Module):
    """[B, F, d] embeddings of the fields of ``FieldInputs`` (see the module docstring).

    Args:
        fields: the fields, in ``FieldInputs`` order.
        dims: the number of ids of each token / token_seq field (padding included).
        size: the embedding size d.
        seq_pool: how token_seq embeddings are pooled over the ids present, "mean", "sum" or "max".
    """

    def __init__(self, fields: list[FeatureField], dims: dict[str, int], size: int, seq_pool: str = "mean") -> None:
        super().__init__()
        self.kinds = [f.type for f in fields]
        token_dims = [dims[f.name] for f in fields if f.type == "token"]
        self.token = nn.Embedding(sum(token_dims), size) if token_dims else None
        self.register_buffer("token_offsets", torch.tensor([0, *np.cumsum(token_dims)[:-1]], dtype=torch.long))
        self.token_seq = nn.ModuleList(nn.Embedding(dims[f.name], size) for f in fields if f.type == "token_seq")
        # RecBole's float table: 2 rows per field (row 1 scaled by the value), or one per bucket of a bucketed field
        floats = [f for f in fields if f.type == "float"]
        float_dims = [f.buckets or 2 for f in floats]
        self.numeric = nn.Embedding(sum(float_dims), size) if floats else None
        self.register_buffer("float_offsets", torch.tensor([0, *np.cumsum(float_dims)[:-1]]), persistent=False)
        self.register_buffer("float_bucketed", torch.tensor([f.buckets > 0 for f in floats]), persistent=False)
        seqs = [f for f in fields if f.type == "float_seq"]
        self.numeric_seq = nn.ModuleList(nn.Embedding(f.buckets or 2, size) for f in seqs)
        self.seq_bucketed = [f.buckets > 0 for f in seqs]
        self.seq_pool = seq_pool

    def forward(self, values: list) -> torch.Tensor:
        parts: list[torch.Tensor] = []
        by_kind: dict[str, list] = {kind: [] for kind in KIND_ORDER}
        for kind, value in zip(self.kinds, values, strict=True):
            by_kind[kind].append(value)
        for table, ids in zip(self.token_seq, by_kind["token_seq"], strict=True):
            mask = (ids != 0).unsqueeze(-1).to(table.weight.dtype)
            if self.seq_pool == "max":  # RecBole's: padding lowered by 1e9 (a row without ids gives -1e9)
                pooled = (table(ids) - (1 - mask) * 1e9).max(1).values
            else:
                pooled = (table(ids) * mask).sum(1)
            if self.seq_pool == "mean":
                pooled = pooled / (mask.sum(1) + 1e-8)
            parts.append(pooled.unsqueeze(1))
        if by_kind["token"]:
            ids = torch.stack(by_kind["token"], dim=1) + self.token_offsets
            parts.append(self.token(ids))
        for table, bucketed, (value, mask) in zip(
            self.numeric_seq, self.seq_bucketed, by_kind["float_seq"], strict=True
        ):
            present = mask.unsqueeze(-1).to(table.weight.dtype)
            vectors = table((value * mask).long()) if bucketed else value.unsqueeze(-1) * table.weight[1]
            pooled = (vectors * present).sum(1) / (mask.sum(1, keepdim=True) + 1e-8)
            parts.append(pooled.unsqueeze(1))
        if by_kind["float"]:
            value = torch.stack(by_kind["float"], dim=1)  # [B, n_float]
            rows = self.float_offsets + torch.where(self.float_bucketed, value.long(), 1)
            scale = torch.where(self.float_bucketed, torch.ones_like(value), value)
            parts.append(scale.unsqueeze(-1) * self.numeric(rows))
        return torch.cat(parts, dim=1)


def mlp_layers(sizes: list[int], dropout: float, activation: str = "relu", batch_norm: bool = False) -> nn.Sequential:
    """RecBole's MLPLayers: per layer Dropout -> Linear -> [BatchNorm1d] -> activation (also after the last);
    activation relu, tanh, sigmoid, dice (RecBole's Dice: its alpha is a constant 0, so x * sigmoid(x)) or none."""
    activations = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "dice": nn.SiLU, "none": nn.Identity}
    layers: list[nn.Module] = []
    for d_in, d_out in itertools.pairwise(sizes):
        layers += [nn.Dropout(dropout), nn.Linear(d_in, d_out)]
        if batch_norm:
            layers.append(nn.BatchNorm1d(d_out))
        layers.append(activations[activation]())
    return nn.Sequential(*layers)
