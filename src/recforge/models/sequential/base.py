"""The base of sequential models (RecBole's ``SequentialRecommender``): a model reads each example's history and
scores the next item.

A batch holds ``item_id_list`` [B, L] (``ITEM_SEQ``: the history, oldest first, right-padded with 0),
``item_length`` [B] (``ITEM_SEQ_LEN``), the target ``item_id`` [B] (``POS_ITEM_ID``) and, with ``loss_type: BPR``,
``neg_item_id`` [B] (``NEG_ITEM_ID``). ``full_sort_predict`` scores every item for each row's history (the user
id is not used). Most models encode a history into one vector and score items by a dot product with the item
embeddings: they implement ``forward(item_seq, item_seq_len) -> [B, d]`` and name the table ``item_embedding``,
and ``calculate_loss`` / ``predict`` / ``full_sort_predict`` here do the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from recforge.config.types import Float, Key, Str
from recforge.models.base import Recommender
from recforge.models.losses import bpr_loss
from recforge.utils.enum_type import InputType, ModelType

LOSS_TYPES = ("CE", "BPR")
NEXT_ITEMS_PREFIX = "next_"  # the batch column of all-position training (SequentialDataset.next_item_examples)


def loss_type_key(default: str = "CE", gbce: bool = False) -> Key:
    """The ``loss_type`` key of sequential models (RecBole's: CE, a softmax over all items, or BPR against one
    sampled negative; with ``gbce`` also gSASRec's gBCE)."""
    return Key(
        "loss_type",
        Str(choices=(*LOSS_TYPES, "gBCE") if gbce else LOSS_TYPES),
        default,
        "CE: cross-entropy of the target against every item; BPR: the target against one sampled negative"
        + ("; gBCE: gSASRec's calibrated binary cross-entropy against gbce_negatives sampled items." if gbce else "."),
    )


def gbce_keys() -> tuple[Key, ...]:
    """The keys of gBCE (Petrov & Macdonald, RecSys 2023), for models with ``loss_type: gBCE``."""
    from recforge.config.types import Int

    return (
        Key(
            "gbce_t", Float(minimum=0.0, maximum=1.0), 0.75, "gBCE: calibration t (0: plain BCE, 1: fully calibrated)."
        ),
        Key("gbce_negatives", Int(minimum=1), 256, "gBCE: items drawn uniformly per position as negatives."),
    )


def transformer_keys(dropout: float = 0.5) -> tuple[Key, ...]:
    """The keys of RecBole's transformer encoder (SASRec's defaults; ``dropout`` for both dropout rates)."""
    from recforge.config.types import Int

    return (
        Key("n_layers", Int(minimum=1), 2, "Transformer layers."),
        Key("n_heads", Int(minimum=1), 2, "Attention heads per layer (hidden_size must be a multiple)."),
        Key("hidden_size", Int(minimum=1), 64, "Dimension d of item, position and hidden vectors."),
        Key("inner_size", Int(minimum=1), 256, "Hidden units of each feed-forward layer."),
        Key("hidden_dropout_prob", Float(minimum=0.0, maximum=1.0), dropout, "Dropout on hidden vectors."),
        Key("attn_dropout_prob", Float(minimum=0.0, maximum=1.0), dropout, "Dropout on attention weights."),
        Key(
            "hidden_act", Str(choices=("gelu", "relu", "swish", "tanh", "sigmoid")), "gelu", "Feed-forward activation."
        ),
        Key("layer_norm_eps", Float(minimum=0.0), 1e-12, "LayerNorm epsilon."),
        Key("initializer_range", Float(minimum=0.0), 0.02, "Standard deviation of the normal initialisation."),
    )


def normal_initialization(std: float):
    """RecBole's ``_init_weights`` of transformer models: normal(0, std) linear and embedding weights (the padding
    row included, as RecBole), LayerNorm weight 1 and bias 0, zero linear biases."""

    def initialise(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            module.weight.data.normal_(mean=0.0, std=std)
        elif isinstance(module, nn.LayerNorm):
            module.bias.data.zero_()
            module.weight.data.fill_(1.0)
        if isinstance(module, nn.Linear) and module.bias is not None:
            module.bias.data.zero_()

    return initialise


class SequentialRecommender(Recommender):
    """Base class of sequential models (see the module docstring).

    Attributes (RecBole's): ``ITEM_SEQ``, ``ITEM_SEQ_LEN``, ``POS_ITEM_ID``, ``NEG_ITEM_ID``, ``max_seq_length``
    (``MAX_ITEM_LIST_LENGTH``), ``n_items`` (the item vocabulary size, padding included).
    """

    type = ModelType.SEQUENTIAL
    input_type = InputType.POINTWISE  # examples; BPR's negative is a column of the batch (``NEG_ITEM_ID``)
    item_embedding: nn.Embedding
    loss_type: ClassVar[str] = "CE"

    def __init__(self, config: Mapping[str, Any], dataset) -> None:
        super().__init__(config, dataset)
        self.ITEM_SEQ: str = self.ITEM_ID + config["LIST_SUFFIX"]
        self.ITEM_SEQ_LEN: str = config["ITEM_LIST_LENGTH_FIELD"]
        self.POS_ITEM_ID: str = self.ITEM_ID
        self.max_seq_length: int = config["MAX_ITEM_LIST_LENGTH"]
        self.n_items = dataset.num(self.ITEM_ID)
        if "loss_type" in config:
            self.loss_type = config["loss_type"]
        self.all_positions = bool(config.get("train_all_positions"))
        if self.all_positions and (not hasattr(self, "position_outputs") or self.loss_type == "BPR"):
            from recforge.errors import ConfigError

            raise ConfigError(
                f"config key 'train_all_positions': {type(self).__name__} with loss_type {self.loss_type} cannot "
                "train at every position (models with per-position outputs, such as SASRec and GRU4Rec, can with "
                "loss_type CE or gBCE); set train_all_positions: false"
            )

    # -- helpers (RecBole's) -----------------------------------------------------------------------
    @staticmethod
    def gather_indexes(output: torch.Tensor, gather_index: torch.Tensor) -> torch.Tensor:
        """``output[b, gather_index[b]]``: [B, L, d], [B] -> [B, d]."""
        index = gather_index.view(-1, 1, 1).expand(-1, -1, output.shape[-1])
        return output.gather(dim=1, index=index).squeeze(1)

    @staticmethod
    def get_attention_mask(item_seq: torch.Tensor, bidirectional: bool = False) -> torch.Tensor:
        """The additive attention mask [B, 1, L, L] (or [B, 1, 1, L] bidirectional): 0 where a position may look
        (a non-padding key, and not a later one unless ``bidirectional``), -10000 elsewhere (RecBole's value)."""
        allowed = (item_seq != 0).unsqueeze(1).unsqueeze(2)
        if not bidirectional:
            allowed = torch.tril(allowed.expand((-1, -1, item_seq.size(-1), -1)))
        return torch.where(allowed, 0.0, -10000.0)

    # -- the contract for models that encode a history into one vector -----------------------------
    def forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        """The history's representation [B, d]."""
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def sequence_output(self, interaction) -> torch.Tensor:
        return self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN])

    def item_weight(self) -> torch.Tensor:
        """[n_items, d]: the vectors items are scored with."""
        return self.item_embedding.weight

    def calculate_loss(self, interaction) -> torch.Tensor:
        if self.all_positions:
            return self.all_positions_loss(interaction)
        return self.output_loss(self.sequence_output(interaction), interaction)

    def all_positions_loss(self, interaction) -> torch.Tensor:
        """The loss of the next item at every position of the histories (``train_all_positions``): the outputs
        ``position_outputs(item_seq)`` [B, L, d] against ``next_item_id_list`` [B, L] where it is not padding."""
        outputs = self.position_outputs(interaction[self.ITEM_SEQ])
        targets = interaction[NEXT_ITEMS_PREFIX + self.ITEM_SEQ]
        present = targets > 0
        return self.targets_loss(outputs[present], targets[present])

    def output_loss(self, seq_output: torch.Tensor, interaction) -> torch.Tensor:
        """``loss_type``'s loss of the representations [B, d] against the targets (and negatives for BPR)."""
        pos_items = interaction[self.POS_ITEM_ID]
        if self.loss_type == "BPR":
            items = self.item_weight()
            pos_score = (seq_output * items[pos_items]).sum(-1)
            neg_score = (seq_output * items[interaction[self.NEG_ITEM_ID]]).sum(-1)
            return bpr_loss(pos_score, neg_score)
        return self.targets_loss(seq_output, pos_items)

    def targets_loss(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """CE (softmax over every item) or gBCE of representations [N, d] against their targets [N]."""
        if self.loss_type == "gBCE":
            return self.gbce_loss(hidden, targets)
        return F.cross_entropy((hidden @ self.item_weight().T).float(), targets)

    def gbce_loss(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """gSASRec's gBCE: ``-(beta log sigmoid(s+) + sum_k log(1 - sigmoid(s-_k))) / (1 + k)`` averaged over the
        rows, ``k = gbce_negatives`` items drawn uniformly (torch's generator), ``beta = alpha (t (1 - 1/alpha) +
        1/alpha)`` with the sampling rate ``alpha = k / (n_items - 2)`` (the real items but the target)."""
        k = self.config["gbce_negatives"]
        negatives = torch.randint(1, self.n_items, (len(targets), k), device=targets.device)
        items = self.item_weight()
        positive = (hidden * items[targets]).sum(-1).float()
        negative = torch.einsum("nd,nkd->nk", hidden, items[negatives]).float()
        alpha = k / max(self.n_items - 2, 1)
        beta = alpha * (self.config["gbce_t"] * (1 - 1 / alpha) + 1 / alpha)
        per_row = -beta * F.logsigmoid(positive) + F.softplus(negative).sum(-1)
        return (per_row / (1 + k)).mean()

    def predict(self, interaction) -> torch.Tensor:
        seq_output = self.sequence_output(interaction)
        return (seq_output * self.item_weight()[interaction[self.ITEM_ID]]).sum(-1)

    def full_sort_predict(self, interaction) -> torch.Tensor:
        return self.sequence_output(interaction) @ self.item_weight().T
