"""KGNN-LS: knowledge-aware graph neural networks with label smoothness regularisation (Wang et al., KDD 2019), as
RecBole 1.2.1: KGCN's model plus a label-propagation loss over the same receptive field."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from recforge.config.types import Float, Key
from recforge.models.graph import interactions
from recforge.models.knowledge.kgcn import KGCN, pair_labels
from recforge.models.losses import embedding_loss
from recforge.registry import register_model

UNLABELLED = 0.5  # RecBole's label of a (user, entity) pair outside the interaction table


def sample_unlabelled_pairs(
    positives: torch.Tensor, n_users: int, n_items: int, stride: int, generator: torch.Generator
) -> torch.Tensor:
    """RecBole's ``sample_neg_interaction``, vectorised: as many uniform draws (with replacement) of (user, item)
    pairs that are not positive as there are positive pairs, returned as distinct sorted keys
    ``user * stride + item``. ``positives``: the positive keys, sorted and distinct. Users and items are drawn
    among the real ids 1..n-1 (RecBole's ``random.randint(0, n)`` includes both ends: padding and one id past
    the last, which for items is a non-item entity). Drawn in rounds sized by the acceptance rate."""
    count = len(positives)
    users, items = positives // stride, positives % stride
    total = (n_users - 1) * (n_items - 1)
    available = total - int(((users >= 1) & (items >= 1)).sum())
    drawn: list[torch.Tensor] = []
    need = count if available > 0 else 0
    while need > 0:
        size = math.ceil(need * total / available * 1.2) + 16
        keys = torch.randint(1, n_users, (size,), generator=generator) * stride
        keys += torch.randint(1, n_items, (size,), generator=generator)
        keys = keys[~torch.isin(keys, positives)][:need]
        drawn.append(keys)
        need -= len(keys)
    return torch.unique(torch.cat(drawn)) if drawn else positives.new_empty(0)


@register_model
class KGNNLS(KGCN):
    """KGCN's score <e_u, v_i^u> (see KGCN: user-relation attention over a fixed-size receptive field, n_iter
    aggregations) trained with a label smoothness regulariser (Wang, Zhang, Zhang, Zhao, Li, Xie, Wang, KDD 2019).

    Labels (the interaction table, buffers ``label_keys`` / ``label_values``, sorted keys user x n_entities +
    entity): 1 for the training interactions, 0 for as many uniformly drawn non-interacted (user, item) pairs
    (``sample_unlabelled_pairs``, once at construction), 0.5 for every other (user, entity). For a pair (u, i)
    the entities of i's receptive field [B, M, k^h] take their labels, except i itself (held out: 0.5, and
    never reset); n_iter rounds of propagation then replace the label of every entity at hops 0..n_iter-1-t by
    mean over its k neighbours of pi_j l_j (pi: KGCN's attention weights of u), except labelled entities, which
    keep their label. The label reached at hop 0 [B, M] is the predicted label.

    ``calculate_loss`` (RecBole's, on users [2B] = (u, u) and items (pos, neg)): BCE with logits of the scores
    against (1, 0) + ``ls_weight`` x BCE with logits of the predicted labels (probabilities used as logits, as
    RecBole and the original code do) against (1, 0) + ``reg_weight`` x (||e_u [2B]|| + ||v [2B]||) / 2B.

    Differs from RecBole on purpose: the unlabelled pairs are drawn among real user and item ids (RecBole's
    off-by-one draws padding ids and id n_items, a non-item entity, which it then labels 0); the table's keys are
    int64 (RecBole's ``user * 10^digits + item`` is cast to int32 and overflows on large data sets).
    """

    hyper_parameters = (
        *KGCN.hyper_parameters,
        Key("ls_weight", Float(minimum=0.0), 0.5, "Weight of the label smoothness regularisation."),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        self.ls_weight: float = config["ls_weight"]

    def build_tables(self, dataset, generator: torch.Generator) -> None:
        """KGCN's neighbour table, then the interaction table (``label_keys`` sorted int64, ``label_values``)."""
        super().build_tables(dataset, generator)
        users, items = (torch.from_numpy(a) for a in interactions(dataset))
        positives = torch.unique(users * self.n_entities + items)
        negatives = sample_unlabelled_pairs(positives, self.n_users, self.n_items, self.n_entities, generator)
        keys = torch.cat([positives, negatives])
        values = torch.cat([torch.ones(len(positives)), torch.zeros(len(negatives))])
        order = torch.argsort(keys)
        self.register_buffer("label_keys", keys[order])
        self.register_buffer("label_values", values[order])

    def labels(self, users: torch.Tensor, entities: torch.Tensor) -> torch.Tensor:
        """Labels of the pairs (users [B], entities [P, M, X]) [B, M, X]: the table's, else 0.5."""
        keys = users[:, None, None] * self.n_entities + entities
        if self.label_keys.numel() == 0:
            return torch.full(keys.shape, UNLABELLED, device=keys.device)
        position = torch.searchsorted(self.label_keys, keys).clamp_max_(self.label_keys.numel() - 1)
        found = self.label_keys[position] == keys
        return torch.where(found, self.label_values[position], UNLABELLED)

    def predicted_labels(
        self, users: torch.Tensor, entities: list[torch.Tensor], weights: list[torch.Tensor]
    ) -> torch.Tensor:
        """RecBole's ``label_smoothness_predict``: label propagation over the receptive field -> [B, M]."""
        k = self.neighbor_sample_size
        labels, reset = [], []
        for hop_entities in entities:
            known = self.labels(users, hop_entities)
            kept = hop_entities != entities[0]  # the pair's own item is held out
            reset.append((known != UNLABELLED) & kept)
            labels.append(torch.where(kept, known, UNLABELLED))
        for t in range(self.n_iter):
            labels = [
                torch.where(
                    reset[hop],
                    labels[hop],
                    (weights[hop] * labels[hop + 1].unflatten(-1, (-1, k))).sum(-1),  # weights: pi / k
                )
                for hop in range(self.n_iter - t)
            ]
        return labels[0].squeeze(-1)

    def calculate_loss(self, interaction) -> torch.Tensor:
        users = interaction[self.USER_ID]
        items = torch.stack([interaction[self.ITEM_ID], interaction[self.NEG_ITEM_ID]], dim=1)  # [B, 2]
        user_e, item_e, entities, weights = self.encode(users, items)
        scores = (user_e.unsqueeze(1) * item_e).sum(-1).float()
        target = pair_labels(scores)
        rec_loss = F.binary_cross_entropy_with_logits(scores, target)
        ls_loss = F.binary_cross_entropy_with_logits(self.predicted_labels(users, entities, weights), target)
        reg_loss = embedding_loss(user_e.repeat(2, 1), item_e.flatten(0, 1))
        return rec_loss + self.ls_weight * ls_loss + self.reg_weight * reg_loss
