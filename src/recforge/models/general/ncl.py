"""NCL: neighbourhood-enriched contrastive learning (Lin et al., WWW 2022; RecBole's NCL, trained by NCLTrainer)."""

from __future__ import annotations

import logging
from typing import ClassVar

import torch
import torch.nn.functional as F

from recforge.config.types import Float, Int, Key, Str
from recforge.models.clustering import kmeans
from recforge.models.general.lightgcn import LightGCN
from recforge.models.losses import distinct, info_nce_sum
from recforge.registry import register_model

logger = logging.getLogger("recforge")


@register_model
class NCL(LightGCN):
    """LightGCN with two contrastive tasks (RecBole's semantics):

    - structural: each batch user's (positive item's) embedding at layer 2 x ``hyper_layers`` against its own
      layer-0 embedding, over all users' (items') layer-0 embeddings: ``ssl_reg`` x (users + ``alpha`` x items);
    - prototypical: each batch user's (item's) layer-0 embedding against the centroid of its k-means cluster,
      over all centroids: ``proto_reg`` x (users + items). The clusters come from the E-step (``e_step``), which
      NCLTrainer runs every ``m_step`` epochs; the loss is left out during the first ``warm_up_step`` epochs.

    ``calculate_loss`` returns (BPR + ``reg_weight`` x EmbLoss, structural, prototypical). ``num_clusters`` larger
    than the user or item ids is clamped to their number, with a warning (RecBole fails there, #1957).
    """

    trainer = "NCLTrainer"
    # The contrastive losses sum over the batch (several processes: see Recommender.loss_reductions).
    loss_reductions: ClassVar[dict[str, str | tuple[str, ...]]] = {"calculate_loss": ("mean", "sum", "sum")}
    hyper_parameters = (
        Key("embedding_size", Int(minimum=1), 64, "Dimension of user and item embeddings."),
        Key("n_layers", Int(minimum=1), 3, "Propagation layers of the LightGCN backbone."),
        Key("reg_weight", Float(minimum=0.0), 1e-4, "Weight of the L2 norm of the batch's layer-0 embeddings."),
        Key("ssl_temp", Float(minimum=0.0, exclusive_minimum=True), 0.1, "Temperature of both contrastive losses."),
        Key("ssl_reg", Float(minimum=0.0), 1e-7, "Weight of the structural contrastive loss."),
        Key("hyper_layers", Int(minimum=1), 1, "The structural loss contrasts layer 2 x hyper_layers with layer 0."),
        Key("alpha", Float(minimum=0.0), 1.0, "Weight of the items' part of the structural loss."),
        Key("proto_reg", Float(minimum=0.0), 8e-8, "Weight of the prototypical contrastive loss."),
        Key("num_clusters", Int(minimum=1), 1000, "Prototypes (k-means clusters) of users and of items."),
        Key("m_step", Int(minimum=1), 1, "Epochs between two E-steps."),
        Key("warm_up_step", Int(minimum=0), 20, "Epochs before the prototypical loss counts."),
        Key(
            "kmeans_backend", Str(choices=("auto", "faiss", "torch")), "auto", "k-means: faiss if installed, or torch."
        ),
    )
    resizable_buffers = ("user_centroids", "user_2cluster", "item_centroids", "item_2cluster")

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        self.require_pow = False  # RecBole's NCL does not read require_pow
        self.ssl_temp: float = config["ssl_temp"]
        self.ssl_reg: float = config["ssl_reg"]
        self.hyper_layers: int = config["hyper_layers"]
        self.alpha: float = config["alpha"]
        self.proto_reg: float = config["proto_reg"]
        self.backend: str = config["kmeans_backend"]
        wanted = config["num_clusters"]
        self.user_clusters, self.item_clusters = min(wanted, self.n_users), min(wanted, self.n_items)
        if wanted > min(self.n_users, self.n_items):
            counts = (wanted, self.n_users, self.n_items, self.user_clusters, self.item_clusters)
            logger.warning(
                "num_clusters %d exceeds the %d user / %d item ids; clustering users into %d and items into %d", *counts
            )
        size = config["embedding_size"]
        self.register_buffer("user_centroids", torch.zeros(0, size))
        self.register_buffer("user_2cluster", torch.zeros(0, dtype=torch.int64))
        self.register_buffer("item_centroids", torch.zeros(0, size))
        self.register_buffer("item_2cluster", torch.zeros(0, dtype=torch.int64))

    @torch.no_grad()
    def e_step(self, seed: int | None = None) -> None:
        """Cluster the layer-0 user and item embeddings (every id, padding included, as RecBole does); the
        centroids are L2-normalised. ``seed`` fixes k-means' start (default: the config's seed)."""
        seed = self.config["seed"] if seed is None else seed
        for name, table, k in (
            ("user", self.user_embedding.weight, self.user_clusters),
            ("item", self.item_embedding.weight, self.item_clusters),
        ):
            centroids, assignment = kmeans(table, k, seed, self.backend)
            setattr(self, f"{name}_centroids", F.normalize(centroids.to(table.device), p=2, dim=1))
            setattr(self, f"{name}_2cluster", assignment.to(table.device))

    def prototype_loss(self, unit_center: torch.Tensor, users, items) -> torch.Tensor:
        """ProtoNCE of the batch's users and positive items (L2-normalised layer-0 node embeddings
        ``unit_center`` [N, d]); ``users`` and ``items`` are (distinct ids, their counts in the batch)."""
        if len(self.user_2cluster) == 0:
            self.e_step()
        (user, user_count), (item, item_count) = users, items
        losses = [
            info_nce_sum(
                unit_center.index_select(0, ids + offset),
                centroids.index_select(0, assignment.index_select(0, ids)),
                centroids,
                self.ssl_temp,
                count,
                normalized=True,  # the centroids are normalised by the E-step
            )
            for ids, count, offset, centroids, assignment in (
                (user, user_count, 0, self.user_centroids, self.user_2cluster),
                (item, item_count, self.n_users, self.item_centroids, self.item_2cluster),
            )
        ]
        return self.proto_reg * (losses[0] + losses[1])

    def structure_loss(self, unit_context: torch.Tensor, unit_center: torch.Tensor, users, items) -> torch.Tensor:
        """The batch's users (items) at layer 2 x hyper_layers against layer 0, over all users (items), from the
        L2-normalised node embeddings of both layers [N, d]; ``users`` and ``items`` are (distinct ids, their
        counts in the batch)."""
        (user, user_count), (item, item_count) = users, items
        center_users, center_items = self.split(unit_center)
        user_loss, item_loss = (
            info_nce_sum(
                unit_context.index_select(0, ids),
                unit_center.index_select(0, ids),
                candidates,
                self.ssl_temp,
                count,
                normalized=True,
            )
            for ids, count, candidates in (
                (user, user_count, center_users),
                (item + self.n_users, item_count, center_items),
            )
        )
        return self.ssl_reg * (user_loss + self.alpha * item_loss)

    def calculate_loss(self, interaction) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        layers = self.layers(max(self.n_layers, 2 * self.hyper_layers))
        center, context = layers[0], layers[2 * self.hyper_layers]
        recommendation = self.recommendation_loss(interaction, self.layer_mean(layers[: self.n_layers + 1]), center)
        # Each distinct user / item once, weighted by its count: the same sums as RecBole's over the batch rows.
        users, items = distinct(interaction[self.USER_ID]), distinct(interaction[self.ITEM_ID])
        unit_center = F.normalize(center, dim=1)  # once for the anchors, positives and candidates of both losses
        return (
            recommendation,
            self.structure_loss(F.normalize(context, dim=1), unit_center, users, items),
            self.prototype_loss(unit_center, users, items),
        )
