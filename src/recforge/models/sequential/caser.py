"""Caser: personalized top-N sequential recommendation via convolutional sequence embedding (Tang & Wang, WSDM 2018),
RecBole's formulation (target length T = 1, one example per history).

The history's item embeddings form an L x d image (L = ``MAX_ITEM_LIST_LENGTH``, padding included). ``nv``
vertical filters (L x 1) weight the L rows into ``nv`` d-vectors; ``nh`` horizontal filters of every height
h = 1..L (h x d), each followed by a ReLU and a max over positions, give ``nh * L`` features. Both, after dropout,
pass a ReLU layer to z [B, d]; ReLU(fc2([z, user embedding])) [B, d] scores every item by a dot product with its
embedding. The loss (CE or BPR) adds ``reg_weight`` times the 2-norms of the weight matrices.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from recforge.config.types import Float, Int, Key
from recforge.errors import ConfigError
from recforge.models.sequential.base import SequentialRecommender, loss_type_key
from recforge.registry import register_model


def caser_initialization(module: nn.Module) -> None:
    """RecBole's ``Caser._init_weights``: embeddings (the padding rows included) normal(0, 1 / d), linear weights
    Xavier-normal with zero biases; convolutions keep PyTorch's default."""
    if isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight.data, 0, 1.0 / module.embedding_dim)
    elif isinstance(module, nn.Linear):
        nn.init.xavier_normal_(module.weight.data)
        if module.bias is not None:
            nn.init.constant_(module.bias.data, 0)


@register_model
class Caser(SequentialRecommender):
    """Vertical and horizontal convolutions over the history's embedding matrix, joined with the user's
    embedding (see the module docstring)."""

    hyper_parameters = (
        Key("embedding_size", Int(minimum=1), 64, "Dimension d of user and item embeddings."),
        Key("dropout_prob", Float(minimum=0.0, maximum=1.0), 0.4, "Dropout on the convolutions' features."),
        Key("reg_weight", Float(minimum=0.0), 1e-4, "Weight of the L2 norms of the weight matrices in the loss."),
        Key("nv", Int(minimum=0), 4, "Vertical convolution filters (L x 1)."),
        Key("nh", Int(minimum=0), 8, "Horizontal convolution filters of each height 1..L (h x d)."),
        loss_type_key(),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        self.embedding_size = size = config["embedding_size"]
        self.n_h, self.n_v = config["nh"], config["nv"]
        if not self.n_h and not self.n_v:
            raise ConfigError("config key 'nv': nv and nh are both 0; Caser needs at least one convolution filter")
        self.reg_weight = config["reg_weight"]
        length = self.max_seq_length
        self.user_embedding = nn.Embedding(self.n_users, size, padding_idx=0)
        self.item_embedding = nn.Embedding(self.n_items, size, padding_idx=0)
        with warnings.catch_warnings():  # nv or nh 0: PyTorch warns that initialising no filters does nothing
            warnings.filterwarnings("ignore", "Initializing zero-element tensors", UserWarning)
            self.conv_v = nn.Conv2d(in_channels=1, out_channels=self.n_v, kernel_size=(length, 1))
            self.conv_h = nn.ModuleList(nn.Conv2d(1, self.n_h, kernel_size=(h, size)) for h in range(1, length + 1))
        self.fc1_dim_v = self.n_v * size
        self.fc1_dim_h = self.n_h * length
        self.fc1 = nn.Linear(self.fc1_dim_v + self.fc1_dim_h, size)
        self.fc2 = nn.Linear(size + size, size)
        self.dropout = nn.Dropout(config["dropout_prob"])
        self.ac_conv = nn.ReLU()
        self.ac_fc = nn.ReLU()
        self.apply(caser_initialization)

    def forward(self, user: torch.Tensor, item_seq: torch.Tensor) -> torch.Tensor:
        """The history's representation [B, d] from users [B] and histories [B, L]."""
        image = self.item_embedding(item_seq).unsqueeze(1)  # [B, 1, L, d]
        features = []
        if self.n_v:
            features.append(self.conv_v(image).view(-1, self.fc1_dim_v))  # [B, nv * d], no activation
        if self.n_h:
            for conv in self.conv_h:  # [B, nh, L - h + 1] -> max over positions -> [B, nh]
                out = self.ac_conv(conv(image).squeeze(3))
                features.append(F.max_pool1d(out, out.size(2)).squeeze(2))
        z = self.ac_fc(self.fc1(self.dropout(torch.cat(features, dim=1))))
        return self.ac_fc(self.fc2(torch.cat([z, self.user_embedding(user)], dim=1)))

    def sequence_output(self, interaction) -> torch.Tensor:
        return self.forward(interaction[self.USER_ID], interaction[self.ITEM_SEQ])

    def reg_loss_conv_h(self) -> torch.Tensor:
        """``reg_weight`` x the sum of the horizontal filters' weight 2-norms."""
        norms = [conv.weight.norm(2) for conv in self.conv_h]
        return self.reg_weight * torch.stack(norms).sum()

    def calculate_loss(self, interaction) -> torch.Tensor:
        """``loss_type``'s loss + ``reg_weight`` x the 2-norms of the embedding tables, conv_v's, fc1's, fc2's
        and every horizontal filter's weight (RecBole's RegLoss)."""
        loss = self.output_loss(self.sequence_output(interaction), interaction)
        weights = (self.user_embedding, self.item_embedding, self.conv_v, self.fc1, self.fc2)
        reg = torch.stack([module.weight.norm(2) for module in weights]).sum()
        return loss + self.reg_weight * reg + self.reg_loss_conv_h()
