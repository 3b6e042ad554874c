"""SINE: sparse-interest network for sequential recommendation (Tan et al., WSDM 2021), RecBole's formulation.

The history activates the ``interest_size`` best-matching of ``prototype_size`` learned concept prototypes; each
history item is assigned to the activated concepts, every concept pools its items into an interest vector, and
the interests are mixed by their agreement with the history's prototype sequence. The mixed vector scores every
item by a dot product with its embedding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from recforge.config.types import Float, Int, Key, Str
from recforge.errors import ConfigError
from recforge.models.sequential.base import SequentialRecommender
from recforge.registry import register_model


@register_model
class SINE(SequentialRecommender):
    """Sparse concept activation, intention assignment and attentive interest pooling (RecBole reads every
    position of the history, padding included)."""

    hyper_parameters = (
        Key("embedding_size", Int(minimum=1), 64, "Dimension D of item embeddings, prototypes and interests."),
        Key("layer_norm_eps", Float(minimum=0.0), 1e-12, "LayerNorm epsilon."),
        Key("prototype_size", Int(minimum=1), 50, "Number L of latent concept prototypes."),
        Key("interest_size", Int(minimum=1), 3, "Number k of concepts (interests) activated per history."),
        Key("tau_ratio", Float(minimum=0.0, exclusive_minimum=True), 0.1, "Temperature of the interest mixing."),
        Key("reg_loss_ratio", Float(minimum=0.0), 0.5, "Weight of the prototype covariance loss (NLL only)."),
        Key(
            "loss_type",
            Str(choices=("CE", "BPR", "NLL")),
            "CE",
            "CE: cross-entropy against every item; BPR: against one sampled negative; NLL: cross-entropy plus "
            "reg_loss_ratio x the prototypes' covariance loss.",
        ),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        self.embedding_size = self.D = config["embedding_size"]
        self.L = config["prototype_size"]
        self.k = config["interest_size"]
        if self.k > self.L:
            raise ConfigError(
                f"config key 'interest_size': {self.k} is more than prototype_size ({self.L}) concepts to activate"
            )
        self.tau = config["tau_ratio"]
        self.reg_loss_ratio = config["reg_loss_ratio"]
        self.initializer_range = 0.01
        self.w1 = self._init_weight((self.D, self.D))
        self.w2 = self._init_weight((self.D,))
        self.w3 = self._init_weight((self.D, self.D))
        self.w4 = self._init_weight((self.D,))
        self.C = nn.Embedding(self.L, self.D)
        self.w_k_1 = self._init_weight((self.k, self.D, self.D))
        self.w_k_2 = self._init_weight((self.k, self.D))
        self.item_embedding = nn.Embedding(self.n_items, self.D, padding_idx=0)
        self.ln2 = nn.LayerNorm(self.D, eps=config["layer_norm_eps"])
        self.ln4 = nn.LayerNorm(self.D, eps=config["layer_norm_eps"])
        self.apply(self._init_weights)

    def _init_weight(self, shape: tuple[int, ...]) -> nn.Parameter:
        """A parameter drawn from normal(0, 0.01) (RecBole draws it with NumPy's global generator)."""
        return nn.Parameter(torch.empty(shape).normal_(0.0, self.initializer_range))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        """RecBole's: embeddings Xavier-normal (the padding row too), LayerNorm weight 1 and bias 0."""
        if isinstance(module, nn.Embedding):
            nn.init.xavier_normal_(module.weight)
        elif isinstance(module, nn.LayerNorm):
            module.bias.data.zero_()
            module.weight.data.fill_(1.0)

    def concepts(self, x_u: torch.Tensor) -> torch.Tensor:
        """The activated prototypes ``C_u`` [B, k, D] of histories [B, N, D]: the k prototypes closest to the
        attention-pooled history (in ascending order of that score), each scaled by the sigmoid of its score."""
        a = F.softmax(torch.tanh(x_u @ self.w1) @ self.w2, dim=1)
        z_u = (a.unsqueeze(1) @ x_u).transpose(1, 2)  # [B, D, 1]
        s_u = (self.C.weight @ z_u).squeeze(2)  # [B, L]
        s_u_idx, idx = s_u.sort(1)
        s_u_idx, idx = s_u_idx[:, -self.k :], idx[:, -self.k :]
        return self.C(idx) * torch.sigmoid(s_u_idx).unsqueeze(2)

    def interests(self, x_u: torch.Tensor, P_k_t_b: torch.Tensor) -> torch.Tensor:
        """The normalised interest vectors ``delta_k`` [B, k, D] of histories [B, N, D] with item-to-concept
        assignments ``P_k_t_b`` [B, N, k]."""
        a_k = x_u.unsqueeze(1).repeat(1, self.k, 1, 1) @ self.w_k_1  # [B, k, N, D]
        P_t_k = F.softmax((torch.tanh(a_k) @ self.w_k_2.reshape(self.k, self.D, 1)).squeeze(3), dim=2)
        mul_p = P_k_t_b.transpose(1, 2) * P_t_k  # [B, k, N]
        delta_k = (x_u.unsqueeze(1) * mul_p.unsqueeze(3)).sum(2)
        return F.normalize(delta_k, p=2, dim=2)

    def forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        """The user vector ``v_u`` [B, D] of histories [B, N] (N = MAX_ITEM_LIST_LENGTH)."""
        x_u = self.item_embedding(item_seq)
        C_u = self.concepts(x_u)
        # intention assignment: cosine-like match of each item with each activated concept
        w3_x_u_norm = F.normalize(x_u @ self.w3, p=2, dim=2)
        P_k_t_b = F.softmax(torch.bmm(w3_x_u_norm, self.ln2(C_u).transpose(1, 2)), dim=2)  # [B, N, k]
        delta_k = self.interests(x_u, P_k_t_b)
        # the prototype sequence, pooled by attention
        x_u_bar = P_k_t_b @ C_u  # [B, N, D]
        C_apt = F.softmax(torch.tanh(x_u_bar @ self.w3) @ self.w4, dim=1)
        C_apt = self.ln4(C_apt.reshape(-1, 1, self.max_seq_length) @ x_u_bar)  # [B, 1, D]
        # aggregation of the interests
        e_k = delta_k.bmm(C_apt.reshape(-1, self.D, 1)) / self.tau
        e_k_u = F.softmax(e_k.squeeze(2), dim=1)
        return (e_k_u.unsqueeze(2) * delta_k).sum(dim=1)

    def calculate_reg_loss(self) -> torch.Tensor:
        """Half the squared off-diagonal Frobenius norm of the prototypes' covariance ``C_c C_c^T / D``."""
        C_reg = self.C.weight - self.C.weight.mean(dim=1, keepdim=True)
        C_reg = C_reg @ C_reg.T / self.D
        return (torch.norm(C_reg) ** 2 - torch.norm(torch.diag(C_reg)) ** 2) / 2

    def calculate_loss(self, interaction) -> torch.Tensor:
        if self.loss_type != "NLL":
            return super().calculate_loss(interaction)  # CE or BPR, without the regulariser (as RecBole)
        logits = self.sequence_output(interaction) @ self.item_embedding.weight.T
        loss = F.nll_loss(F.log_softmax(logits, dim=1), interaction[self.POS_ITEM_ID])
        return loss + self.calculate_reg_loss() * self.reg_loss_ratio
