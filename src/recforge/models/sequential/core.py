"""CORE: simple and effective session-based recommendation within a consistent representation space (Hou et al.,
SIGIR 2022), RecBole's formulation.

The session's representation is a weighted sum of its own item embeddings, L2-normalised (the representation-
consistent encoder): the weights are uniform over the items (``dnn_type: ave``) or a softmax over the items of a
linear score of a causal transformer's outputs (``trm``). Items are scored by the cosine with their embedding over a
temperature (robust distance measuring); training applies dropout to the session's and the candidates' embeddings.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from recforge.config.types import Float, Int, Key, Str
from recforge.models.sequential.base import SequentialRecommender, normal_initialization
from recforge.models.sequential.layers import TransformerEncoder
from recforge.registry import register_model


class TransNet(nn.Module):
    """The ``trm`` weights: [B, L] items, [B, L, d] embeddings -> [B, L, 1] softmax weights over the non-padding
    items of a linear score of a causal transformer over the embeddings plus positions."""

    def __init__(self, config, max_seq_length: int) -> None:
        super().__init__()
        hidden, heads = config["embedding_size"], config["n_heads"]
        if hidden % heads != 0:
            from recforge.errors import ConfigError

            raise ConfigError(
                f"config key 'embedding_size': {hidden} is not a multiple of n_heads ({heads}); change either"
            )
        self.position_embedding = nn.Embedding(max_seq_length, hidden)
        self.trm_encoder = TransformerEncoder(
            n_layers=config["n_layers"],
            n_heads=config["n_heads"],
            hidden_size=hidden,
            inner_size=config["inner_size"],
            hidden_dropout_prob=config["hidden_dropout_prob"],
            attn_dropout_prob=config["attn_dropout_prob"],
            hidden_act=config["hidden_act"],
            layer_norm_eps=config["layer_norm_eps"],
        )
        self.LayerNorm = nn.LayerNorm(hidden, eps=config["layer_norm_eps"])
        self.dropout = nn.Dropout(config["hidden_dropout_prob"])
        self.fn = nn.Linear(hidden, 1)
        self.apply(normal_initialization(config["initializer_range"]))  # then overwritten by CORE's uniform reset

    def forward(self, item_seq: torch.Tensor, item_emb: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(item_seq.size(1), device=item_seq.device).unsqueeze(0)
        hidden = self.dropout(self.LayerNorm(item_emb + self.position_embedding(positions)))
        mask = SequentialRecommender.get_attention_mask(item_seq)
        output = self.trm_encoder(hidden, mask, output_all_encoded_layers=False)[-1]
        alpha = self.fn(output).to(torch.double)
        alpha = torch.where(item_seq.gt(0).unsqueeze(-1), alpha, -9e15)
        return torch.softmax(alpha, dim=1, dtype=torch.float)


def ave_net(item_seq: torch.Tensor, item_emb: torch.Tensor) -> torch.Tensor:
    """The ``ave`` weights [B, L, 1]: 1 / length on each non-padding item."""
    mask = item_seq.gt(0)
    return (mask.to(torch.float) / mask.sum(dim=-1, keepdim=True)).unsqueeze(-1)


@register_model
class CORE(SequentialRecommender):
    """Sessions as normalised weighted sums of their item embeddings; cosine scores over a temperature."""

    hyper_parameters = (
        Key("embedding_size", Int(minimum=1), 64, "Dimension of item embeddings (and of the transformer)."),
        Key("inner_size", Int(minimum=1), 256, "Hidden units of each feed-forward layer (trm)."),
        Key("n_layers", Int(minimum=1), 2, "Transformer layers (trm)."),
        Key("n_heads", Int(minimum=1), 2, "Attention heads per layer (trm; embedding_size must be a multiple)."),
        Key("hidden_dropout_prob", Float(minimum=0.0, maximum=1.0), 0.5, "Dropout on hidden vectors (trm)."),
        Key("attn_dropout_prob", Float(minimum=0.0, maximum=1.0), 0.5, "Dropout on attention weights (trm)."),
        Key(
            "hidden_act",
            Str(choices=("gelu", "relu", "swish", "tanh", "sigmoid")),
            "gelu",
            "Feed-forward activation (trm).",
        ),
        Key("layer_norm_eps", Float(minimum=0.0), 1e-12, "LayerNorm epsilon (trm)."),
        Key("initializer_range", Float(minimum=0.0), 0.02, "Std of the transformer's normal initialisation (trm)."),
        Key("loss_type", Str(choices=("CE",)), "CE", "CE only: cross-entropy of the target against every item."),
        Key("dnn_type", Str(choices=("trm", "ave")), "trm", "Session weights: a transformer's (trm) or uniform."),
        Key("sess_dropout", Float(minimum=0.0, maximum=1.0), 0.2, "Dropout on the session's item embeddings."),
        Key("item_dropout", Float(minimum=0.0, maximum=1.0), 0.2, "Dropout on the candidates' embeddings (training)."),
        Key("temperature", Float(minimum=0.0, exclusive_minimum=True), 0.07, "Temperature dividing the cosines."),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        self.embedding_size = config["embedding_size"]
        self.dnn_type = config["dnn_type"]
        self.sess_dropout = nn.Dropout(config["sess_dropout"])
        self.item_dropout = nn.Dropout(config["item_dropout"])
        self.temperature = config["temperature"]
        self.item_embedding = nn.Embedding(self.n_items, self.embedding_size, padding_idx=0)
        self.net = TransNet(config, self.max_seq_length) if self.dnn_type == "trm" else ave_net
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        """RecBole's: every parameter (LayerNorms and biases included) uniform in +-1/sqrt(embedding_size)."""
        bound = 1.0 / math.sqrt(self.embedding_size)
        for weight in self.parameters():
            weight.data.uniform_(-bound, bound)

    def forward(self, item_seq: torch.Tensor) -> torch.Tensor:
        """[B, L] -> the sessions' L2-normalised representations [B, d]."""
        x = self.sess_dropout(self.item_embedding(item_seq))
        alpha = self.net(item_seq, x)
        return F.normalize((alpha * x).sum(dim=1), dim=-1)

    def sequence_output(self, interaction) -> torch.Tensor:
        return self.forward(interaction[self.ITEM_SEQ])

    def calculate_loss(self, interaction) -> torch.Tensor:
        seq_output = self.sequence_output(interaction)  # RecBole's order of the two dropouts' draws
        items = F.normalize(self.item_dropout(self.item_embedding.weight), dim=-1)
        logits = seq_output @ items.T / self.temperature
        return F.cross_entropy(logits.float(), interaction[self.POS_ITEM_ID])

    def predict(self, interaction) -> torch.Tensor:
        # RecBole 1.2.1's predict scores with the raw item embedding, unlike its full_sort_predict and its loss; it is
        # normalised here too, so that sampled and full ranking score alike.
        items = F.normalize(self.item_embedding(interaction[self.ITEM_ID]), dim=-1)
        return (self.sequence_output(interaction) * items).sum(dim=-1) / self.temperature

    def full_sort_predict(self, interaction) -> torch.Tensor:
        items = F.normalize(self.item_embedding.weight, dim=-1)
        return self.sequence_output(interaction) @ items.T / self.temperature
