"""KTUP: knowledge-enhanced translation-based user preference (Cao et al., WWW 2019), as RecBole 1.2.1."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from recforge.config.types import Bool, Float, Int, Key, Optional
from recforge.models.base import InputType
from recforge.models.init import xavier_uniform_initialization
from recforge.models.knowledge.base import KnowledgeRecommender
from recforge.models.losses import bpr_loss
from recforge.registry import register_model

SCORE_CHUNK = 1 << 24  # elements of one [users, items, d] block of the general full-ranking path


def transh_projection(x: torch.Tensor, norm: torch.Tensor) -> torch.Tensor:
    """TransH's projection on the hyperplane of normal ``norm`` (not re-normalised, as RecBole): x - (x . n) n."""
    return x - (x * norm).sum(-1, keepdim=True) * norm


def orthogonal_loss(relations: torch.Tensor, norms: torch.Tensor) -> torch.Tensor:
    """sum_r (n_r . w_r)^2 / |w_r|^2 over the rows: TransH's soft constraint that w_r lies in the hyperplane."""
    return ((norms * relations).sum(1) ** 2 / (relations**2).sum(1)).sum()


def norm_margin_loss(*embeddings: torch.Tensor) -> torch.Tensor:
    """sum over the rows of max(|e|^2 - 1, 0): the soft constraint |e| <= 1 (RecBole's ``EmbMarginLoss``)."""
    return sum(((e**2).sum(1) - 1).clamp(min=0).sum() for e in embeddings)


@register_model
class KTUP(KnowledgeRecommender):
    """TransH between users and items over induced preferences, jointly trained with TransH on the knowledge graph.

    Preferences share the relations' ids: each relation ``r`` has a preference translation ``p_r`` and normal
    ``q_r``; a pair (user u [d], item v = v_item + e_entity [d]) attends over them with
    ``a = (u + v) (p + w)^T / 2`` [R] (``w``, ``n``: the relations' TransH translations and normals), used raw or,
    with ``use_st_gumbel``, as a straight-through Gumbel-softmax one-hot (forward: the argmax of a + Gumbel noise;
    backward: the softmax's gradient). The pair's translation is ``r = a (p + w) / 2`` and its normal
    ``m = a (q + n) / 2``; the score is ``-|P(u) + r - P(v)|`` (squared L2, or L1 with ``L1_flag``), ``P`` the
    projection ``x - (x . m) m``.

    ``calculate_loss`` (interaction batches) returns (BPR of the positive against the negative item's score, the
    orthogonality of the preferences ``sum_r (q_r . p_r)^2 / |p_r|^2``, ``align_weight`` x the mean distance of
    item and entity embeddings of the batch's items). ``calculate_kg_loss`` (triple batches) returns
    (``kg_weight`` x (margin ranking of the TransH scores of the true and sampled tails + orthogonality of the
    batch's relations, summed over the batch + ``sum max(|e|^2 - 1, 0)`` over the batch's head, tails and relation
    translations), ``align_weight`` x the mean item-entity distance of the batch's entities that are items).
    KGTrainer alternates ``train_rec_step`` epochs of the first and ``train_kg_step`` epochs of the second.

    Differences from RecBole, on purpose: (1) scoring (``predict``, ``full_sort_predict``) uses the Gumbel-softmax's
    noise-free mode, the argmax of ``a`` (RecBole adds fresh Gumbel noise at evaluation, so its rankings are random
    and a full ranking could not equal pairwise scores); training draws the noise from torch's global generator as
    RecBole. (2) The item embeddings are L2-normalised at initialisation like every other table (RecBole's
    ``item_embedding.weight_data = ...`` typo leaves them un-normalised). (3) The KG alignment term over a triple
    batch without any item entity is 0 (RecBole: the mean of an empty tensor, NaN).
    """

    input_type = InputType.PAIRWISE
    hyper_parameters = (
        Key("train_rec_step", Optional(Int(minimum=1)), 5, "Recommendation epochs per KGTrainer cycle."),
        Key("train_kg_step", Optional(Int(minimum=1)), 5, "Knowledge-graph epochs per KGTrainer cycle."),
        Key("embedding_size", Int(minimum=1), 64, "Dimension of users, items, entities, relations, preferences."),
        Key("use_st_gumbel", Bool(), True, "Pick one preference by straight-through Gumbel-softmax (else raw mix)."),
        Key("L1_flag", Bool(), False, "L1 distances in scores and alignment (else squared L2)."),
        Key("margin", Float(minimum=0.0), 1.0, "Margin of the knowledge graph's margin ranking loss."),
        Key("kg_weight", Float(minimum=0.0), 1.0, "Weight of the knowledge graph loss and its regularisers."),
        Key("align_weight", Float(minimum=0.0), 1.0, "Weight of the item-entity alignment loss."),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        self.embedding_size: int = config["embedding_size"]
        self.use_st_gumbel: bool = config["use_st_gumbel"]
        self.L1_flag: bool = config["L1_flag"]
        self.margin: float = config["margin"]
        self.kg_weight: float = config["kg_weight"]
        self.align_weight: float = config["align_weight"]
        d = self.embedding_size
        self.user_embedding = nn.Embedding(self.n_users, d)
        self.item_embedding = nn.Embedding(self.n_items, d)
        self.pref_embedding = nn.Embedding(self.n_relations, d)
        self.pref_norm_embedding = nn.Embedding(self.n_relations, d)
        self.entity_embedding = nn.Embedding(self.n_entities, d)
        self.relation_embedding = nn.Embedding(self.n_relations, d)
        self.relation_norm_embedding = nn.Embedding(self.n_relations, d)
        self.apply(xavier_uniform_initialization)
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, nn.Embedding):
                    module.weight.copy_(F.normalize(module.weight, p=2, dim=1))

    # -- the preference-induced translation ---------------------------------------------------------------------

    def preference_tables(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(p + w, q + n): the preferences' translations and normals, each [R, d] (halved where they are used)."""
        return (
            self.pref_embedding.weight + self.relation_embedding.weight,
            self.pref_norm_embedding.weight + self.relation_norm_embedding.weight,
        )

    @staticmethod
    def st_gumbel_softmax(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """One-hot of the argmax of logits + Gumbel noise in the forward pass, the softmax's gradient backwards
        (noise from torch's global generator; computed in float32)."""
        logits = logits.float()
        eps = 1e-20
        uniform = torch.rand_like(logits)
        soft = F.softmax((logits - torch.log(-torch.log(uniform + eps) + eps)) / temperature, dim=-1)
        hard = F.one_hot(soft.argmax(-1), soft.shape[-1]).to(soft.dtype)
        return (hard - soft).detach() + soft

    def attention(self, user_e: torch.Tensor, item_e: torch.Tensor, sample: bool) -> torch.Tensor:
        """The preference weights [B, R] of pairs: raw logits, or with ``use_st_gumbel`` a one-hot (sampled by
        straight-through Gumbel-softmax when ``sample``, the logits' argmax otherwise)."""
        table, _ = self.preference_tables()
        # (u + v) W^T / 2 written as u W^T / 2 + v W^T / 2, the form full_sort_predict gathers from.
        logits = (user_e @ table.T) / 2 + (item_e @ table.T) / 2
        if not self.use_st_gumbel:
            return logits
        if sample:
            return self.st_gumbel_softmax(logits)
        return F.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)

    def distance(self, x: torch.Tensor) -> torch.Tensor:
        """Sum over the last dimension of |x| (``L1_flag``) or x^2."""
        return x.abs().sum(-1) if self.L1_flag else (x**2).sum(-1)

    def pair_scores(self, user_e: torch.Tensor, item_e: torch.Tensor, sample: bool) -> torch.Tensor:
        """-|P(u) + r - P(v)| for user and item vectors [..., d] (item + entity): [...]."""
        weights = self.attention(user_e, item_e, sample)
        table, norm_table = self.preference_tables()
        relation_e = weights.to(table.dtype) @ table / 2
        norm_e = weights.to(table.dtype) @ norm_table / 2
        diff = transh_projection(user_e, norm_e) + relation_e - transh_projection(item_e, norm_e)
        return -self.distance(diff)

    def item_vectors(self, items: torch.Tensor) -> torch.Tensor:
        """v_item + e_entity of item ids of any shape (entity i is item i)."""
        return self.item_embedding(items) + self.entity_embedding(items)

    def align_distance(self, entities: torch.Tensor) -> torch.Tensor:
        """Item-entity distances of item ids [B] -> [B]."""
        return self.distance(self.item_embedding(entities) - self.entity_embedding(entities))

    # -- losses ---------------------------------------------------------------------------------------------------

    def calculate_loss(self, interaction) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        users = interaction[self.USER_ID]
        pos_items, neg_items = interaction[self.ITEM_ID], interaction[self.NEG_ITEM_ID]
        user_e = self.user_embedding(users)
        pos_score = self.pair_scores(user_e, self.item_vectors(pos_items), sample=True)
        neg_score = self.pair_scores(user_e, self.item_vectors(neg_items), sample=True)
        rec_loss = bpr_loss(pos_score, neg_score)
        orth = orthogonal_loss(self.pref_embedding.weight, self.pref_norm_embedding.weight)
        align = self.align_weight * self.align_distance(torch.cat([pos_items, neg_items])).mean()
        return rec_loss, orth, align

    def calculate_kg_loss(self, interaction) -> tuple[torch.Tensor, torch.Tensor]:
        heads, relations, pos_tails, neg_tails = self.kg_batch(interaction)
        head_e, pos_e, neg_e = self.entity_embedding(torch.stack([heads, pos_tails, neg_tails])).unbind(0)
        relation_e = self.relation_embedding(relations)
        norm_e = self.relation_norm_embedding(relations)
        head_p = transh_projection(head_e, norm_e)
        pos_score = -self.distance(head_p + relation_e - transh_projection(pos_e, norm_e))
        neg_score = -self.distance(head_p + relation_e - transh_projection(neg_e, norm_e))
        ranking = F.margin_ranking_loss(pos_score, neg_score, torch.ones_like(pos_score), margin=self.margin)
        constraints = orthogonal_loss(relation_e, norm_e) + norm_margin_loss(head_e, pos_e, neg_e, relation_e)
        loss = self.kg_weight * (ranking + constraints)
        # Alignment over the batch's entities that are items (a masked mean: no data-dependent shapes).
        entities = torch.cat([heads, pos_tails, neg_tails])
        is_item = (entities < self.n_items).to(pos_score.dtype)
        distances = self.align_distance(entities.clamp(max=self.n_items - 1))
        align = self.align_weight * (distances * is_item).sum() / is_item.sum().clamp(min=1)
        return loss, align

    # -- scoring --------------------------------------------------------------------------------------------------

    def predict(self, interaction) -> torch.Tensor:
        user_e = self.user_embedding(interaction[self.USER_ID])
        return self.pair_scores(user_e, self.item_vectors(interaction[self.ITEM_ID]), sample=False)

    def full_sort_predict(self, interaction) -> torch.Tensor:
        """Scores [B, n_items] of every item, equal to ``predict`` on every pair, in float32.

        Default (one-hot preferences, squared L2): with the pair's preference k = argmax_k (u . W_k + v . W_k),
        r = W_k / 2, m = M_k / 2, D = u - v and a = D . m, the score is
        ``-(|D|^2 + |r|^2 + a^2 (|m|^2 - 2) + 2 D . r - 2 a (r . m))``: every term is a user-relation or
        item-relation product gathered at k, or u . v, so the [B, n_items, R] argmax is the largest tensor
        (no [B, n_items, d] block). Raw attention or L1 distances: the pairwise formula on [users, items, d]
        blocks of at most ``SCORE_CHUNK`` elements.
        """
        with torch.autocast(device_type=self.user_embedding.weight.device.type, enabled=False):
            user_e = self.user_embedding(interaction[self.USER_ID]).float()
            item_e = (self.item_embedding.weight + self.entity_embedding.weight[: self.n_items]).float()
            if self.use_st_gumbel and not self.L1_flag:
                return self._one_hot_l2_scores(user_e, item_e)
            rows = max(1, SCORE_CHUNK // (item_e.numel()))
            blocks = [
                self.pair_scores(chunk[:, None, :], item_e[None, :, :], sample=False) for chunk in user_e.split(rows)
            ]
            return torch.cat(blocks)

    def _one_hot_l2_scores(self, user_e: torch.Tensor, item_e: torch.Tensor) -> torch.Tensor:
        table, norm_table = (t.float() for t in self.preference_tables())
        half_table, half_norm = table / 2, norm_table / 2
        user_w, item_w = user_e @ half_table.T, item_e @ half_table.T  # [B, R], [N, R]: the logits' two halves
        user_m, item_m = user_e @ half_norm.T, item_e @ half_norm.T
        pref = (user_w[:, None, :] + item_w[None, :, :]).argmax(-1)  # [B, N]
        r_sq = (half_table**2).sum(1)[pref]
        m_sq = (half_norm**2).sum(1)[pref]
        r_dot_m = (half_table * half_norm).sum(1)[pref]
        d_dot_r = user_w.gather(1, pref) - item_w.T.gather(0, pref)
        a = user_m.gather(1, pref) - item_m.T.gather(0, pref)
        d_sq = (user_e**2).sum(1, keepdim=True) + (item_e**2).sum(1) - 2 * user_e @ item_e.T
        return -(d_sq + r_sq + a**2 * (m_sq - 2) + 2 * d_dot_r - 2 * a * r_dot_m)
