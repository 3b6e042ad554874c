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

SCORE_CHUNK = 1 << 22  # elements of one [users, items, d] block of the general full-ranking path
PREFERENCE_CHUNK = 1 << 20  # elements of one [R, users, items] block of preference logits


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
    """KTUP (Cao et al., "Unifying Knowledge Graph Learning and Recommendation: Towards a Better Understanding of
    User Preferences", WWW 2019): TransH between users and items over induced preferences, trained jointly with
    TransH on the knowledge graph.

    Preferences share the relations' ids: each relation ``r`` has a preference translation ``p_r`` and normal
    ``q_r``; a pair (user u [d], item v = v_item + e_entity [d]) attends over them with
    ``a = (u + v) (p + w)^T / 2`` [R] (``w``, ``n`` [R, d]: the relations' TransH translations and normals), used
    raw (no softmax, as RecBole and the authors' code) or, with ``use_st_gumbel``, as a straight-through
    Gumbel-softmax one-hot (forward: the argmax of a + Gumbel noise; backward: the softmax's gradient). The pair's
    translation is ``r = a (p + w) / 2`` [d] and its normal ``m = a (q + n) / 2`` [d]; the score is
    ``-|P(u) + r - P(v)|`` (squared L2, or L1 with ``L1_flag``), ``P`` the projection ``x - (x . m) m``.

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

    # -- losses ---------------------------------------------------------------------------------------------------
    # One lookup per table and step: every lookup of a dense embedding adds a full-table gradient in backward.

    def calculate_loss(self, interaction) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        users = interaction[self.USER_ID]
        items = torch.cat([interaction[self.ITEM_ID], interaction[self.NEG_ITEM_ID]])  # positives, then negatives
        user_e = self.user_embedding(users)
        item_rows, entity_rows = self.item_embedding(items), self.entity_embedding(items)
        # One pass over the 2B pairs: the Gumbel draws are the positives' [B, R] then the negatives' (RecBole's order).
        scores = self.pair_scores(user_e.repeat(2, 1), item_rows + entity_rows, sample=True)
        pos_score, neg_score = scores.split(len(users))
        rec_loss = bpr_loss(pos_score, neg_score)
        orth = orthogonal_loss(self.pref_embedding.weight, self.pref_norm_embedding.weight)
        align = self.align_weight * self.distance(item_rows - entity_rows).mean()
        return rec_loss, orth, align

    def calculate_kg_loss(self, interaction) -> tuple[torch.Tensor, torch.Tensor]:
        heads, relations, pos_tails, neg_tails = self.kg_batch(interaction)
        entities = torch.cat([heads, pos_tails, neg_tails])
        entity_rows = self.entity_embedding(entities)
        head_e, pos_e, neg_e = entity_rows.view(3, len(heads), -1).unbind(0)
        relation_e = self.relation_embedding(relations)
        norm_e = self.relation_norm_embedding(relations)
        head_p = transh_projection(head_e, norm_e)
        pos_score = -self.distance(head_p + relation_e - transh_projection(pos_e, norm_e))
        neg_score = -self.distance(head_p + relation_e - transh_projection(neg_e, norm_e))
        ranking = F.margin_ranking_loss(pos_score, neg_score, torch.ones_like(pos_score), margin=self.margin)
        constraints = orthogonal_loss(relation_e, norm_e) + norm_margin_loss(head_e, pos_e, neg_e, relation_e)
        loss = self.kg_weight * (ranking + constraints)
        # Alignment over the batch's entities that are items (a masked mean: no data-dependent shapes).
        is_item = (entities < self.n_items).to(pos_score.dtype)
        item_rows = self.item_embedding(entities.clamp(max=self.n_items - 1))
        distances = self.distance(item_rows - entity_rows)
        align = self.align_weight * (distances * is_item).sum() / is_item.sum().clamp(min=1)
        return loss, align

    # -- scoring --------------------------------------------------------------------------------------------------

    def predict(self, interaction) -> torch.Tensor:
        user_e = self.user_embedding(interaction[self.USER_ID])
        return self.pair_scores(user_e, self.item_vectors(interaction[self.ITEM_ID]), sample=False)

    @torch.no_grad()
    def full_sort_predict(self, interaction) -> torch.Tensor:
        """Scores [B, n_items] of every item, equal to ``predict`` on every pair, in float32 (no gradient).

        Default (one-hot preferences, squared L2): with t_k = (p_k + w_k) / 2 and m_k = (q_k + n_k) / 2, the pair's
        preference is k = argmax_k (u . t_k + v . t_k), and expanding the squared distance,
        ``|P(u) + t_k - P(v)|^2 = U[u, k] + V[v, k] - 2 c_k (u . m_k)(v . m_k) - 2 u . v`` with
        ``c_k = |m_k|^2 - 2``, ``U = |u|^2 + c_k (u . m_k)^2 + |t_k|^2 + 2 u . t_k - 2 (t_k . m_k)(u . m_k)`` and
        ``V = |v|^2 + c_k (v . m_k)^2 - 2 v . t_k + 2 (t_k . m_k)(v . m_k)``: [B, R] and [n_items, R] tables
        gathered at k, and one product u . v. The largest tensor is a [R, users, n_items] block of logits of at most
        ``PREFERENCE_CHUNK`` elements (no [B, n_items, d] tensor). Raw attention or L1 distances: the pairwise
        formula on [users, n_items, d] blocks of at most ``SCORE_CHUNK`` elements.
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
        """The default full ranking (see ``full_sort_predict``) of user vectors [B, d] against items [N, d]."""
        table, norm_table = (t.float() / 2 for t in self.preference_tables())  # t_k, m_k: [R, d]
        n_pref, n_items = len(table), len(item_e)
        c = (norm_table**2).sum(1) - 2
        w_dot_m = (table * norm_table).sum(1)
        user_w, user_m = user_e @ table.T, user_e @ norm_table.T  # [B, R]
        item_w, item_m = item_e @ table.T, item_e @ norm_table.T  # [N, R]
        user_part = (user_e**2).sum(1, keepdim=True) + c * user_m**2 + (table**2).sum(1) + 2 * user_w
        user_part -= 2 * w_dot_m * user_m
        user_cross = -2 * c * user_m
        item_part = (item_e**2).sum(1, keepdim=True) + c * item_m**2 - 2 * item_w + 2 * w_dot_m * item_m
        # Item tables as [R, N] (gathered along R); the user logits as [R, B] (sliced per block).
        item_part, item_cross, item_logits = (x.T.contiguous() for x in (item_part, item_m, item_w))
        user_logits = user_w.T.contiguous()
        rows = max(1, PREFERENCE_CHUNK // (n_pref * n_items))
        buffer = torch.empty(n_pref * min(rows, len(user_e)) * n_items, device=user_e.device)
        scores = torch.empty(len(user_e), n_items, device=user_e.device)
        for start in range(0, len(user_e), rows):
            block = slice(start, min(start + rows, len(user_e)))
            logits = buffer[: n_pref * (block.stop - start) * n_items].view(n_pref, -1, n_items)
            torch.add(user_logits[:, block, None], item_logits[:, None, :], out=logits)
            pref = self._argmax_first_dim(logits)  # [rows, N]
            base = user_part[block].gather(1, pref) + item_part.gather(0, pref)
            out = scores[block]
            torch.addmm(base, user_e[block], item_e.T, alpha=-2, out=out)
            out.addcmul_(user_cross[block].gather(1, pref), item_cross.gather(0, pref))
        return scores.neg_()

    @staticmethod
    def _argmax_first_dim(values: torch.Tensor) -> torch.Tensor:
        """``values.argmax(0)`` of a contiguous [R, ...] tensor (the first maximum), as a max-pooling over R of a
        channels-last view: a vectorised kernel (torch's argmax over a small dimension is several times slower)."""
        n_pref, shape = values.shape[0], values.shape[1:]
        pooled = values.reshape(1, n_pref, 1, -1).permute(0, 3, 1, 2)  # [1, C, R, 1] with C contiguous
        _, index = F.max_pool2d(pooled, (n_pref, 1), return_indices=True)
        return index.reshape(shape)
