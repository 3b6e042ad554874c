"""LightGCN: embeddings smoothed over the user-item graph (He et al., SIGIR 2020; RecBole's LightGCN)."""

from __future__ import annotations

import torch
from torch import nn

from recforge.config.types import Float, Int, Key
from recforge.models.base import InputType
from recforge.models.graph import GraphRecommender
from recforge.models.init import xavier_uniform_initialization
from recforge.models.losses import batch_embedding_loss, bpr_loss
from recforge.models.sparse import propagate
from recforge.registry import register_model

LIGHTGCN_KEYS = (
    Key("embedding_size", Int(minimum=1), 64, "Dimension d of user and item embeddings."),
    Key("n_layers", Int(minimum=0), 2, "Propagation layers L; the final embedding averages layers 0..L."),
    Key("reg_weight", Float(minimum=0.0), 1e-05, "Weight of the L2 norm of the batch's layer-0 embeddings."),
)


@register_model
class LightGCN(GraphRecommender):
    """E^(l+1) = A E^(l) over the normalised adjacency A, E = mean(E^(0), ..., E^(L)), score(u, i) = <e_u, e_i>.

    Loss: BPR on the final embeddings + ``reg_weight`` x RecBole's EmbLoss of the batch's layer-0 embeddings
    (users, positives, negatives; ``require_pow`` as configured). Xavier-uniform initialisation.
    """

    input_type = InputType.PAIRWISE
    hyper_parameters = LIGHTGCN_KEYS

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        size = config["embedding_size"]
        self.n_layers: int = config["n_layers"]
        self.reg_weight: float = config["reg_weight"]
        self.require_pow: bool = config["require_pow"]
        self.user_embedding = nn.Embedding(self.n_users, size)
        self.item_embedding = nn.Embedding(self.n_items, size)
        self.apply(xavier_uniform_initialization)

    def ego_embeddings(self) -> torch.Tensor:
        """Layer 0: every user's then every item's embedding, [n_users + n_items, d]."""
        return torch.cat([self.user_embedding.weight, self.item_embedding.weight])

    def layers(self, count: int) -> list[torch.Tensor]:
        """Layer-0 embeddings and ``count`` propagations of them: [E^(0), ..., E^(count)]."""
        layers = [self.ego_embeddings()]
        for _ in range(count):
            layers.append(propagate(self.adjacency, layers[-1]))
        return layers

    @staticmethod
    def layer_mean(layers: list[torch.Tensor]) -> torch.Tensor:
        """The mean of the layers' embeddings (float32)."""
        total = layers[0].float()
        for layer in layers[1:]:
            total = total + layer
        return total / len(layers)

    def propagated(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.split(self.layer_mean(self.layers(self.n_layers)))

    def batch_nodes(self, interaction) -> tuple[torch.Tensor, int, int]:
        """The batch's users, positives and negatives as graph nodes (one index tensor, users first), with the
        batch size B and the negatives per positive N."""
        user, pos, neg = interaction[self.USER_ID], interaction[self.ITEM_ID], interaction[self.NEG_ITEM_ID]
        n_neg = neg.shape[1] if neg.dim() == 2 else 1
        return torch.cat([user, pos + self.n_users, neg.reshape(-1) + self.n_users]), len(user), n_neg

    def recommendation_loss(self, interaction, nodes: torch.Tensor, ego: torch.Tensor) -> torch.Tensor:
        """BPR on the final node embeddings ``nodes`` [N, d] + ``reg_weight`` x the L2 term on the batch's
        layer-0 embeddings ``ego`` [N, d] (RecBole's EmbLoss of the users', positives' and negatives' rows)."""
        index, batch, n_neg = self.batch_nodes(interaction)
        user_e, pos_e, neg_e = nodes.index_select(0, index).split([batch, batch, batch * n_neg])
        pos_scores = (user_e * pos_e).sum(-1)
        if n_neg > 1:
            neg_scores = torch.einsum("bd,bnd->bn", user_e, neg_e.view(batch, n_neg, -1))
        else:
            neg_scores = (user_e * neg_e).sum(-1)
        regular = batch_embedding_loss(ego, index, [batch, batch, batch * n_neg], self.require_pow)
        return bpr_loss(pos_scores, neg_scores) + self.reg_weight * regular

    def calculate_loss(self, interaction) -> torch.Tensor:
        layers = self.layers(self.n_layers)
        return self.recommendation_loss(interaction, self.layer_mean(layers), layers[0])
