"""RepeatNet: a repeat-aware neural recommendation machine for session-based recommendation (Ren et al., AAAI 2019),
RecBole's formulation.

A GRU reads the history's item embeddings into states ``h_1..h_L`` (``h_t`` the state at the last item). The next
item's probability is a mixture of two distributions over all items,
``P(i) = P(repeat) P_r(i) + P(explore) P_e(i)``:

- ``[P(repeat), P(explore)] = softmax(W_cre sum_j a_j h_j)``, ``a = softmax_j(V_re tanh(U_re h_j + W_re h_t))`` over
  every position, padding included (as RecBole);
- the repeat decoder attends over the history's non-padding positions,
  ``b = softmax_j(V_r tanh(U_r h_j + W_r h_t))``, and ``P_r(i)`` sums ``b_j`` over the positions holding item ``i``
  (a scatter-add into [B, n_items]; RecBole < 1.2 multiplied by a dense [B, L, n_items] one-hot map);
- the explore decoder attends the same way (``U_e``, ``W_e``, ``V_e``), and ``P_e`` is the softmax of
  ``M [sum_j c_j h_j; h_t]`` over the items not in the history.

The loss is the negative log of the target's mixture probability (plus, with ``joint_train``, RecBole's
repeat / explore classification term); the scores are the mixture probabilities.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from recforge.config.types import Bool, Float, Int, Key, Str
from recforge.models.sequential.base import SequentialRecommender
from recforge.registry import register_model

MASKED = -1e9  # RecBole's additive score of padding positions in the decoders' attention


def xavier_normal_initialization(module: nn.Module) -> None:
    """RecBole's RepeatNet ``_init_weights``: xavier-normal embeddings (the padding row included) and linear
    weights, zero linear biases; the GRU keeps PyTorch's initialisation."""
    if isinstance(module, nn.Embedding):
        nn.init.xavier_normal_(module.weight.data)
    elif isinstance(module, nn.Linear):
        nn.init.xavier_normal_(module.weight.data)
        if module.bias is not None:
            nn.init.constant_(module.bias.data, 0)


def additive_attention(
    score: nn.Linear,
    keys: torch.Tensor,
    query: torch.Tensor,
    dropout: nn.Dropout,
    padding: torch.Tensor | None = None,
) -> torch.Tensor:
    """``softmax_j(score(tanh(dropout(keys_j) + dropout(query))))``: keys [B, L, H] (projected), query [B, H]
    (projected), ``padding`` [B, L] (True where a position is masked with -1e9) -> weights [B, L] (float32)."""
    keys = dropout(keys)  # RecBole draws the keys' dropout mask first
    energy = score(torch.tanh(keys + dropout(query).unsqueeze(1))).squeeze(-1).float()
    if padding is not None:
        energy = energy.masked_fill(padding, MASKED)
    return torch.softmax(energy, dim=-1)


class RepeatExploreMechanism(nn.Module):
    """``[P(repeat), P(explore)]`` [B, 2] from the states (RecBole's ``Repeat_Explore_Mechanism``)."""

    def __init__(self, hidden_size: int, dropout_prob: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout_prob)
        self.Wre = nn.Linear(hidden_size, hidden_size, bias=False)
        self.Ure = nn.Linear(hidden_size, hidden_size, bias=False)
        self.Vre = nn.Linear(hidden_size, 1, bias=False)
        self.Wcre = nn.Linear(hidden_size, 2, bias=False)

    def forward(self, all_memory: torch.Tensor, last_memory: torch.Tensor) -> torch.Tensor:
        """all_memory [B, L, H], last_memory [B, H] -> [B, 2]; the attention covers padding positions too."""
        alpha = additive_attention(self.Vre, self.Ure(all_memory), self.Wre(last_memory), self.dropout)
        context = (alpha.unsqueeze(-1) * all_memory).sum(dim=1)
        return torch.softmax(self.Wcre(context).float(), dim=-1)


class RepeatRecommendationDecoder(nn.Module):
    """``P_r`` [B, n_items]: attention over the history, summed per item (RecBole's
    ``Repeat_Recommendation_Decoder``)."""

    def __init__(self, hidden_size: int, num_item: int, dropout_prob: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout_prob)
        self.num_item = num_item
        self.Wr = nn.Linear(hidden_size, hidden_size, bias=False)
        self.Ur = nn.Linear(hidden_size, hidden_size, bias=False)
        self.Vr = nn.Linear(hidden_size, 1)

    def forward(self, all_memory: torch.Tensor, last_memory: torch.Tensor, item_seq: torch.Tensor) -> torch.Tensor:
        """all_memory [B, L, H], last_memory [B, H], item_seq [B, L] -> [B, n_items]."""
        beta = additive_attention(self.Vr, self.Ur(all_memory), self.Wr(last_memory), self.dropout, item_seq == 0)
        # sum_j beta_j onehot(item_seq_j) without the [B, L, n_items] map; padding adds ~0 to column 0
        return beta.new_zeros(item_seq.size(0), self.num_item).scatter_add(1, item_seq, beta)


class ExploreRecommendationDecoder(nn.Module):
    """``P_e`` [B, n_items]: a softmax over the items not in the history (RecBole's
    ``Explore_Recommendation_Decoder``)."""

    def __init__(self, hidden_size: int, num_item: int, dropout_prob: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout_prob)
        self.num_item = num_item
        self.We = nn.Linear(hidden_size, hidden_size)
        self.Ue = nn.Linear(hidden_size, hidden_size)
        self.Ve = nn.Linear(hidden_size, 1)
        self.matrix_for_explore = nn.Linear(2 * hidden_size, num_item, bias=False)

    def forward(self, all_memory: torch.Tensor, last_memory: torch.Tensor, item_seq: torch.Tensor) -> torch.Tensor:
        """all_memory [B, L, H], last_memory [B, H], item_seq [B, L] -> [B, n_items] (0 on the history's items)."""
        gamma = additive_attention(self.Ve, self.Ue(all_memory), self.We(last_memory), self.dropout, item_seq == 0)
        context = (gamma.unsqueeze(-1) * all_memory).sum(dim=1)
        logits = self.dropout(self.matrix_for_explore(torch.cat([context, last_memory], dim=1))).float()
        # RecBole sends padding positions to the first item, so column 0 stays open (unless the history is empty)
        seen = torch.where(item_seq > 0, item_seq, item_seq[:, :1])
        return torch.softmax(logits.scatter(1, seen, float("-inf")), dim=1)


@register_model
class RepeatNet(SequentialRecommender):
    """A GRU encoder; the next item is drawn from a repeat decoder (items of the history) or an explore decoder
    (the other items), mixed by a learned repeat / explore probability. Scores are probabilities."""

    hyper_parameters = (
        Key("embedding_size", Int(minimum=1), 64, "Dimension of item embeddings."),
        Key("hidden_size", Int(minimum=1), 64, "GRU hidden units."),
        Key("joint_train", Bool(), False, "Add RecBole's repeat / explore classification loss to the loss."),
        Key("dropout_prob", Float(minimum=0.0, maximum=1.0), 0.5, "Dropout in the attention and explore logits."),
        Key(
            "loss_type",
            Str(choices=("CE",)),
            "CE",
            "RepeatNet trains with its own loss, the negative log of the target's mixture probability.",
        ),
    )
    # The negative log-likelihood is a mean over the rows; joint_train's term is a product of two batch means
    # (RecBole's broadcast), which several processes follow only approximately.
    loss_reductions: ClassVar[dict[str, str | tuple[str, ...]]] = {"calculate_loss": "mean"}

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        self.embedding_size: int = config["embedding_size"]
        self.hidden_size: int = config["hidden_size"]
        self.joint_train: bool = config["joint_train"]
        self.dropout_prob: float = config["dropout_prob"]
        hidden = self.hidden_size
        self.item_matrix = nn.Embedding(self.n_items, self.embedding_size, padding_idx=0)
        self.gru = nn.GRU(self.embedding_size, hidden, batch_first=True)
        self.repeat_explore_mechanism = RepeatExploreMechanism(hidden, self.dropout_prob)
        self.repeat_recommendation_decoder = RepeatRecommendationDecoder(hidden, self.n_items, self.dropout_prob)
        self.explore_recommendation_decoder = ExploreRecommendationDecoder(hidden, self.n_items, self.dropout_prob)
        self.apply(xavier_normal_initialization)

    def mixture(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(P, [P(repeat), P(explore)])``: the next item's probabilities [B, n_items] and the mode's [B, 2]
        (float32)."""
        all_memory, _ = self.gru(self.item_matrix(item_seq))  # [B, L, H]
        last_memory = self.gather_indexes(all_memory, item_seq_len - 1)  # [B, H]
        modes = self.repeat_explore_mechanism(all_memory, last_memory)
        repeat = self.repeat_recommendation_decoder(all_memory, last_memory, item_seq)
        explore = self.explore_recommendation_decoder(all_memory, last_memory, item_seq)
        return repeat * modes[:, :1] + explore * modes[:, 1:], modes

    def forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        """[B, L], [B] -> the next item's probabilities [B, n_items]."""
        return self.mixture(item_seq, item_seq_len)[0]

    def calculate_loss(self, interaction) -> torch.Tensor:
        item_seq, pos_item = interaction[self.ITEM_SEQ], interaction[self.POS_ITEM_ID]
        prediction, modes = self.mixture(item_seq, interaction[self.ITEM_SEQ_LEN])
        loss = F.nll_loss((prediction + 1e-8).log(), pos_item, ignore_index=0)
        if self.joint_train:
            loss = loss + self.repeat_explore_loss(item_seq, pos_item, modes)
        return loss

    @staticmethod
    def repeat_explore_loss(item_seq: torch.Tensor, pos_item: torch.Tensor, modes: torch.Tensor) -> torch.Tensor:
        """RecBole's classification of the target as a repeat (in the history) or not: its [B, 1] * [B] product
        broadcasts to [B, B], so each term is the mean label times the mean log-probability."""
        repeat = (item_seq == pos_item.unsqueeze(1)).any(dim=1).to(modes.dtype)  # [B]
        repeat_loss = repeat.mean() * torch.log(modes[:, 0] + 1e-8).mean()
        explore_loss = (1 - repeat).mean() * torch.log(modes[:, 1] + 1e-8).mean()
        return (-repeat_loss - explore_loss) / 2

    def predict(self, interaction) -> torch.Tensor:
        prediction = self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN])
        return prediction.gather(1, interaction[self.ITEM_ID].unsqueeze(1)).squeeze(1)

    def full_sort_predict(self, interaction) -> torch.Tensor:
        return self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN])
