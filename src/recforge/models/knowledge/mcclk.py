"""MCCLK: multi-level cross-view contrastive learning for knowledge-aware recommendation (Zou et al., SIGIR 2022),
with RecBole 1.2.1's semantics (``recbole.model.knowledge_aware_recommender.mcclk``)."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from recforge.config.types import Bool, Float, Int, Key, Str
from recforge.errors import ConfigError
from recforge.models.base import InputType
from recforge.models.graph import training_edges
from recforge.models.init import xavier_normal_initialization
from recforge.models.knowledge.base import KnowledgeRecommender
from recforge.models.knowledge.mcclk_layers import (
    Edges,
    Neighbours,
    blend,
    cross_view_loss,
    entity_aggregate,
    knn_graph,
    layer_mean,
    mean_graph,
    sparse_dropout,
    user_aggregate,
    user_mean_matrix,
)
from recforge.models.losses import bpr_loss, distinct, embedding_loss
from recforge.models.sparse import SparseOperator
from recforge.models.tables import ScoreTables
from recforge.registry import register_model


class Views(NamedTuple):
    """The three views' embeddings, each [n_users, d] or [n_items, d]."""

    user_kg: torch.Tensor  # structural (knowledge-graph) view
    item_kg: torch.Tensor
    user_cf: torch.Tensor  # collaborative view (LightGCN)
    item_cf: torch.Tensor
    item_semantic: torch.Tensor  # semantic view (k-NN item-item graph)


def _projection(size: int) -> nn.Sequential:
    """The contrastive losses' projection head: Linear, ReLU, Linear."""
    return nn.Sequential(nn.Linear(size, size), nn.ReLU(), nn.Linear(size, size))


@register_model
class MCCLK(ScoreTables, KnowledgeRecommender):
    """Three views of users and items (embeddings e_u, e_v [d], relations r [d]):

    - structural: ``n_hops`` of relation-aware attention over the knowledge graph (each head averages
      softmax-weighted messages e_tail * r; each user averages its items' embeddings, scaled by
      1 + softmax(e_u R^T) R), message dropout, L2 normalisation; the mean over hops 0..n_hops: u_kg, v_kg;
    - collaborative: ``lightgcn_layer`` products with the row-normalised (D^-1 A) user-item graph, layer mean:
      u_cf, v_cf;
    - semantic: ``item_agg_layer`` products with the k-NN item-item graph (1 - ``lambda_coeff``) x kNN(updated) +
      ``lambda_coeff`` x kNN(e_v), cosine similarities normalised D^-1/2 S D^-1/2, rebuilt (without gradient) at
      every forward; "updated" is the layer mean of a separate attention-free aggregation over the knowledge graph
      (``build_graph_separately``) or the structural view's entities; layer mean: v_sem.

    score(u, v) = <[u_kg, u_cf], [v_kg, v_sem + v_cf]> (sigmoid of it with ``loss_type`` BCE). ``calculate_loss``
    returns (BPR or BCE, ``reg_weight`` x EmbLoss of the batch's [B, 2d] user / positive / negative vectors,
    ``beta`` x (``alpha`` x local + (1 - ``alpha``) x global)), where the local loss contrasts v_sem with v_cf and
    the global one u_kg with u_cf and v_kg with v_sem + v_cf (InfoNCE with intra-view negatives at
    ``temperature``, through the projection heads fc1, fc2, fc3). While training, node dropout keeps a random
    int(n_triples x (1 - ``node_dropout_rate``)) of the triples (drawn anew for the graph builder) and drops each
    user-item entry of the users' mean with probability ``node_dropout_rate`` (the kept ones scaled by 1 / (1 -
    rate)); hop outputs get dropout at ``mess_dropout_rate``. Predictions use the whole graphs, no dropout.

    Deviations from RecBole (on purpose): (1) the k-NN graph joins items, the paper's item-item semantic graph,
    not all entities as RecBole and the authors' code do: ml-100k's 34,629 x 34,629 similarity (4.8 GB, two
    builds per batch) becomes 1,598 x 1,598 (``knn_over_entities: true`` restores RecBole's graph, built in row
    blocks); (2) evaluation samples no triples (RecBole's ``edge_sampling`` also runs in eval mode: its scores are
    random); (3) RecBole drops user-item entries at ``mess_dropout_rate`` (a typo: the authors' code uses
    ``node_dropout_rate``) and keeps int(n_triples x ``node_dropout_rate``) triples (the same number at the
    default 0.5), as KGIN here; (4) the contrastive losses take repeated batch rows once, weighted by their count
    (the same value, O(distinct^2) instead of O(B^2)).

    Zou, Wei, Wang, Mao, Zhu, Zhu, Lin: "Multi-level Cross-view Contrastive Learning for Knowledge-aware
    Recommender System", SIGIR 2022.
    """

    input_type = InputType.PAIRWISE
    hyper_parameters = (
        Key("embedding_size", Int(minimum=1), 64, "Dimension d of user, entity and relation embeddings."),
        Key("reg_weight", Float(minimum=0.0), 1e-5, "Weight of the L2 norm of the batch's final vectors."),
        Key("n_hops", Int(minimum=0), 2, "Aggregation hops over the knowledge graph."),
        Key("node_dropout_rate", Float(minimum=0.0, maximum=1.0), 0.5, "Share of triples and interactions dropped."),
        Key("mess_dropout_rate", Float(minimum=0.0, maximum=1.0), 0.1, "Dropout of the hops' outputs."),
        Key("lightgcn_layer", Int(minimum=0), 2, "Layers of the collaborative (LightGCN) view."),
        Key("item_agg_layer", Int(minimum=0), 1, "Layers of the semantic view over the k-NN item graph."),
        Key("alpha", Float(minimum=0.0, maximum=1.0), 0.2, "Weight of the local-level contrastive loss."),
        Key("beta", Float(minimum=0.0), 0.1, "Weight of the contrastive losses."),
        Key("k", Int(minimum=1), 10, "Neighbours per item in the k-NN semantic graph."),
        Key("lambda_coeff", Float(minimum=0.0, maximum=1.0), 0.5, "Weight of the initial k-NN graph in the blend."),
        Key("temperature", Float(minimum=0.0, exclusive_minimum=True), 0.8, "Temperature of the contrastive losses."),
        Key("build_graph_separately", Bool(), True, "Build the updated k-NN graph from a separate aggregation."),
        Key("loss_type", Str(choices=("BPR", "BCE")), "BPR", "Recommendation loss: BPR, or BCE on pos / neg."),
        Key("knn_over_entities", Bool(), False, "k-NN graph over all entities (RecBole) instead of items."),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        size = config["embedding_size"]
        for name in ("reg_weight", "n_hops", "node_dropout_rate", "mess_dropout_rate", "lightgcn_layer"):
            setattr(self, name, config[name])
        for name in ("item_agg_layer", "alpha", "beta", "k", "lambda_coeff", "temperature"):
            setattr(self, name, config[name])
        self.build_graph_separately: bool = config["build_graph_separately"]
        self.loss_type: str = config["loss_type"]
        if self.node_dropout_rate >= 1:
            raise ConfigError(f"config key 'node_dropout_rate': {self.node_dropout_rate} must be below 1")
        self.knn_nodes: int = self.n_entities if config["knn_over_entities"] else self.n_items
        users, items = (torch.from_numpy(a) for a in training_edges(dataset))
        self.cf_graph = SparseOperator(mean_graph(users, items, self.n_users, self.n_items))
        self.user_items = SparseOperator(user_mean_matrix(users, items, self.n_users, self.n_items))
        for name, ids in zip(("kg_head", "kg_relation", "kg_tail"), self.triples(dataset), strict=True):
            self.register_buffer(name, ids, persistent=False)
        self.user_embedding = nn.Embedding(self.n_users, size)
        self.entity_embedding = nn.Embedding(self.n_entities, size)
        self.relation_embedding = nn.Embedding(self.n_relations, size)
        self.fc1, self.fc2, self.fc3 = _projection(size), _projection(size), _projection(size)
        self.apply(xavier_normal_initialization)

    # -- graphs ------------------------------------------------------------------------------------------------
    def _dropping(self) -> bool:
        """Whether this forward drops triples and user-item edges (training with node_dropout_rate > 0)."""
        return self.training and self.node_dropout_rate > 0.0

    def kg_edges(self) -> Edges:
        """The triples, a random int(n_triples x (1 - node_dropout_rate)) of them while training."""
        edges = Edges(self.kg_head, self.kg_relation, self.kg_tail)
        return edges.sample(self.node_dropout_rate) if self._dropping() else edges

    def _hop_output(self, x: torch.Tensor) -> torch.Tensor:
        """Message dropout, then L2 normalisation of each row."""
        return F.normalize(F.dropout(x, self.mess_dropout_rate, self.training), dim=1)

    # -- views -------------------------------------------------------------------------------------------------
    def structural_view(self, relations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(users [n_users, d], entities [n_entities, d]): hop means of relation-aware aggregation."""
        edges = self.kg_edges()
        user_items = self.user_items.pair
        if self._dropping():
            user_items = sparse_dropout(user_items, self.node_dropout_rate)
        users, entities = self.user_embedding.weight, self.entity_embedding.weight
        user_layers, entity_layers = [users], [entities]
        for _ in range(self.n_hops):
            new_users = user_aggregate(users, entities[: self.n_items], relations, user_items)
            entities = self._hop_output(entity_aggregate(entities, relations, edges, attention=True))
            users = self._hop_output(new_users)
            user_layers.append(users)
            entity_layers.append(entities)
        return layer_mean(user_layers), layer_mean(entity_layers)

    @torch.no_grad()
    def graph_builder_view(self, relations: torch.Tensor) -> torch.Tensor:
        """Entities [n_entities, d] of the separate, attention-free aggregation that updates the k-NN graph (its
        own triple sample; no gradient: RecBole detaches the graph built from it)."""
        edges = self.kg_edges()
        entities = self.entity_embedding.weight
        layers = [entities]
        for _ in range(self.n_hops):
            entities = self._hop_output(entity_aggregate(entities, relations, edges, attention=False))
            layers.append(entities)
        return layer_mean(layers)

    def semantic_graph(self, structural_entities: torch.Tensor, relations: torch.Tensor) -> Neighbours:
        """(1 - lambda_coeff) x kNN(updated entities) + lambda_coeff x kNN(initial entities), over the first
        ``knn_nodes`` entities (items, or all entities)."""
        nodes = self.knn_nodes
        original = knn_graph(self.entity_embedding.weight[:nodes], self.k)
        updated = self.graph_builder_view(relations) if self.build_graph_separately else structural_entities
        return blend(knn_graph(updated[:nodes], self.k), original, self.lambda_coeff)

    def semantic_view(self, graph: Neighbours) -> torch.Tensor:
        """Items [n_items, d]: the layer mean of ``item_agg_layer`` products with the k-NN graph."""
        x = self.entity_embedding.weight[: self.knn_nodes]
        layers = [x]
        for _ in range(self.item_agg_layer):
            layers.append(graph.propagate(layers[-1]))
        return layer_mean(layers)[: self.n_items]

    def collaborative_view(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(users [n_users, d], items [n_items, d]): LightGCN layer mean over the D^-1 A user-item graph."""
        graph = self.cf_graph.pair
        layers = [torch.cat([self.user_embedding.weight, self.entity_embedding.weight[: self.n_items]])]
        for _ in range(self.lightgcn_layer):
            layers.append(graph.propagate(layers[-1]))
        return layer_mean(layers).split([self.n_users, self.n_items])

    def views(self) -> Views:
        relations = self.relation_embedding.weight
        user_kg, entity_kg = self.structural_view(relations)
        item_semantic = self.semantic_view(self.semantic_graph(entity_kg, relations))
        user_cf, item_cf = self.collaborative_view()
        return Views(user_kg, entity_kg[: self.n_items], user_cf, item_cf, item_semantic)

    @staticmethod
    def score_tables(views: Views) -> tuple[torch.Tensor, torch.Tensor]:
        """Users [n_users, 2d] = [u_kg, u_cf] and items [n_items, 2d] = [v_kg, v_sem + v_cf]."""
        users = torch.cat([views.user_kg, views.user_cf], dim=1)
        items = torch.cat([views.item_kg, views.item_semantic + views.item_cf], dim=1)
        return users, items

    # -- training ----------------------------------------------------------------------------------------------
    def contrastive_loss(self, views: Views, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """alpha x local + (1 - alpha) x global over the batch's users [B] and items [2B] (positives, negatives)."""
        item_ids, item_counts = distinct(items)
        user_ids, user_counts = distinct(users)
        semantic, cf = views.item_semantic[item_ids], views.item_cf[item_ids]
        local = cross_view_loss(self.fc1(semantic), self.fc1(cf), item_counts, self.temperature, both_ways=False)
        user_kg, user_cf = self.fc2(views.user_kg[user_ids]), self.fc2(views.user_cf[user_ids])
        global_users = cross_view_loss(user_kg, user_cf, user_counts, self.temperature, both_ways=True)
        item_kg, item_mixed = self.fc3(views.item_kg[item_ids]), self.fc3(semantic + cf)
        global_items = cross_view_loss(item_kg, item_mixed, item_counts, self.temperature, both_ways=True)
        return self.alpha * local + (1 - self.alpha) * (global_users + global_items)

    def calculate_loss(self, interaction) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        user, pos, neg = interaction[self.USER_ID], interaction[self.ITEM_ID], interaction[self.NEG_ITEM_ID]
        if neg.dim() != 1:
            raise ValueError("MCCLK trains with one negative item per positive (train_neg_sample_args.sample_num: 1)")
        views = self.views()
        users, items = self.score_tables(views)
        user_e, pos_e, neg_e = users[user], items[pos], items[neg]
        pos_scores, neg_scores = (user_e * pos_e).sum(-1), (user_e * neg_e).sum(-1)
        if self.loss_type == "BPR":
            rec_loss = bpr_loss(pos_scores, neg_scores)
        else:
            scores = torch.cat([pos_scores, neg_scores])
            targets = torch.cat([torch.ones_like(pos_scores), torch.zeros_like(neg_scores)])
            rec_loss = F.binary_cross_entropy_with_logits(scores, targets)
        reg_loss = self.reg_weight * embedding_loss(user_e, pos_e, neg_e)
        contrastive = self.beta * self.contrastive_loss(views, user, torch.cat([pos, neg]))
        return rec_loss, reg_loss, contrastive

    # -- evaluation --------------------------------------------------------------------------------------------
    def compute_tables(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.score_tables(self.views())

    def score_output(self, scores: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(scores) if self.loss_type == "BCE" else scores
