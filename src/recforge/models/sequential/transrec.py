"""TransRec: translation-based recommendation (He et al., RecSys 2017), RecBole's formulation.

A user translates their last item ``l`` towards the next one: score(u, l, i) = beta_i - ||gamma_l + T + t_u -
gamma_i||_2, with item vectors gamma, a global translation T, a user translation t_u and an item bias beta. Trained
with BPR against one sampled negative; RecBole's loss value adds regularisers that do not train (see
``calculate_loss``).
"""

from __future__ import annotations

import torch
from torch import nn

from recforge.config.types import Int, Key
from recforge.models.losses import bpr_loss, embedding_loss
from recforge.models.sequential.base import SequentialRecommender
from recforge.registry import register_model
from recforge.utils.enum_type import InputType


def xavier_normal_initialization(module: nn.Module) -> None:
    """RecBole's ``xavier_normal_initialization``: embeddings (padding rows included) and linear weights
    Xavier-normal, linear biases 0."""
    if isinstance(module, (nn.Embedding, nn.Linear)):
        nn.init.xavier_normal_(module.weight.data)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.constant_(module.bias.data, 0)


@register_model
class TransRec(SequentialRecommender):
    """Items as points, users as translations between consecutive items (see the module docstring)."""

    input_type = InputType.PAIRWISE  # RecBole's: trained on (target, negative) pairs
    hyper_parameters = (Key("embedding_size", Int(minimum=1), 64, "Dimension of item vectors and translations."),)

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        self.embedding_size = size = config["embedding_size"]
        self.user_embedding = nn.Embedding(self.n_users, size, padding_idx=0)  # t_u
        self.item_embedding = nn.Embedding(self.n_items, size, padding_idx=0)  # gamma_i
        self.bias = nn.Embedding(self.n_items, 1, padding_idx=0)  # beta_i, the item's popularity
        self.T = nn.Parameter(torch.zeros(size))  # the global translation
        self.apply(xavier_normal_initialization)

    @staticmethod
    def _l2_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """||x - y||_2 over the last dimension, kept: [..., d] -> [..., 1]."""
        return torch.sqrt(torch.sum((x - y) ** 2, dim=-1, keepdim=True))

    @staticmethod
    def gather_last_items(item_seq: torch.Tensor, gather_index: torch.Tensor) -> torch.Tensor:
        """``item_seq[b, gather_index[b]]``: [B, L], [B] -> [B]."""
        return item_seq.gather(dim=1, index=gather_index.view(-1, 1)).squeeze(-1)

    def forward(self, user: torch.Tensor, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        """The translated point [B, d]: t_u + T + gamma_l, l the last item of each history [B, L]."""
        last_items = self.gather_last_items(item_seq, item_seq_len - 1)
        user_emb = self.user_embedding(user)
        return user_emb + self.T.expand_as(user_emb) + self.item_embedding(last_items)

    def sequence_output(self, interaction) -> torch.Tensor:
        return self.forward(interaction[self.USER_ID], interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN])

    def _scores(self, seq_output: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """beta_i - ||seq_output - gamma_i|| [B, 1] for one item [B] per row."""
        return self.bias(items) - self._l2_distance(seq_output, self.item_embedding(items))

    def calculate_loss(self, interaction) -> torch.Tensor:
        """BPR of the target against the negative, plus RecBole's regularisers: the 2-norms of the batch's target
        vectors, user translations and target biases, each divided by B, all three detached (so they change the
        loss value, not the gradient; RecBole's), and RecBole's ``RegLoss(T)``, which iterates over T's elements:
        the sum of |T_k|, weight 1."""
        user, pos_items = interaction[self.USER_ID], interaction[self.POS_ITEM_ID]
        seq_output = self.sequence_output(interaction)
        pos_score = self._scores(seq_output, pos_items)
        neg_score = self._scores(seq_output, interaction[self.NEG_ITEM_ID])
        detached = (self.item_embedding(pos_items), self.user_embedding(user), self.bias(pos_items))
        emb_loss = sum(embedding_loss(e.detach()) for e in detached)
        return bpr_loss(pos_score, neg_score) + emb_loss + self.T.abs().sum()

    def predict(self, interaction) -> torch.Tensor:
        """Scores [B] of ``item_id``."""
        return self._scores(self.sequence_output(interaction), interaction[self.ITEM_ID]).squeeze(-1)

    def full_sort_predict(self, interaction) -> torch.Tensor:
        """Scores [B, n_items]: beta - the distances to every item's vector (computed without RecBole's
        [B, n_items, d] copies, from the coordinates' differences as in ``predict``)."""
        seq_output, items = self.sequence_output(interaction).unsqueeze(0), self.item_embedding.weight.unsqueeze(0)
        distances = torch.cdist(seq_output, items, compute_mode="donot_use_mm_for_euclid_dist").squeeze(0)
        return self.bias.weight.T - distances
