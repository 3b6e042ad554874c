"""SimGCL: graph contrastive learning with uniform noise instead of graph augmentations (Yu et al., SIGIR 2022).

Not in RecBole 1.2.1; the keys and defaults are RecBole-GNN's (``lambda``, ``eps``, ``temperature``), the
contrastive loss the authors' (SELFRec): InfoNCE over the batch's distinct users and items, averaged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from recforge.config.types import Float, Int, Key
from recforge.models.general.lightgcn import LightGCN
from recforge.models.losses import info_nce_mean
from recforge.models.sparse import propagate
from recforge.registry import register_model


@register_model
class SimGCL(LightGCN):
    """LightGCN whose final embedding averages layers 1..L (not layer 0), plus a contrastive task between two
    noisy encodings: after each propagation, e += sign(e) ⊙ normalize(u) x ``eps`` with u ~ U(0, 1)^d.

    Loss: LightGCN's (BPR + ``reg_weight`` x EmbLoss of the batch's layer-0 embeddings) + ``lambda`` x (InfoNCE
    of the two noisy views of the batch's distinct users + of its distinct positive items, temperature
    ``temperature``). Prediction uses the noise-free encoding.
    """

    hyper_parameters = (
        Key("embedding_size", Int(minimum=1), 64, "Dimension of user and item embeddings."),
        Key("n_layers", Int(minimum=1), 2, "Propagation layers; the final embedding averages layers 1..L."),
        Key("reg_weight", Float(minimum=0.0), 1e-4, "Weight of the L2 norm of the batch's layer-0 embeddings."),
        Key("lambda", Float(minimum=0.0), 0.5, "Weight of the contrastive loss (the paper's lambda)."),
        Key("eps", Float(minimum=0.0), 0.1, "Length of the noise added to each propagated embedding."),
        Key("temperature", Float(minimum=0.0, exclusive_minimum=True), 0.2, "Temperature of the InfoNCE loss."),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        self.cl_weight: float = config["lambda"]
        self.eps: float = config["eps"]
        self.temperature: float = config["temperature"]

    def encode(self, noisy: bool) -> torch.Tensor:
        """Final node embeddings [N, d]: the mean of layers 1..L, with noise after each layer when ``noisy``."""
        layer, total = self.ego_embeddings(), None
        for _ in range(self.n_layers):
            layer = propagate(self.adjacency, layer)
            if noisy:
                layer = layer + torch.sign(layer) * F.normalize(torch.rand_like(layer), dim=-1) * self.eps
            total = layer if total is None else total + layer
        return total / self.n_layers

    def propagated(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.split(self.encode(noisy=False))

    def calculate_loss(self, interaction) -> torch.Tensor:
        loss = self.recommendation_loss(interaction, self.encode(noisy=False), self.ego_embeddings())
        users = torch.unique(interaction[self.USER_ID])
        items = torch.unique(interaction[self.ITEM_ID]) + self.n_users
        view_1, view_2 = self.encode(noisy=True), self.encode(noisy=True)
        contrast = info_nce_mean(view_1[users], view_2[users], self.temperature) + info_nce_mean(
            view_1[items], view_2[items], self.temperature
        )
        return loss + self.cl_weight * contrast
