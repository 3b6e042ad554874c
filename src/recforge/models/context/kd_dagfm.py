"""KD_DAGFM over feature fields (RecBole's definition and defaults): a DAG-based factorisation machine (the
student) distilled from a complex network (the teacher, ``teacher``: CrossNet or CIN).

Three runs, one per ``phase``, each a whole ordinary training run:

- ``teacher_training``: the teacher and the embeddings learn the labels (binary cross-entropy);
- ``distillation`` (``warm_up``: the teacher run's checkpoint): the student learns from the teacher, on the
  embeddings detached (so they stay as the teacher left them): ``alpha`` x its cross-entropy + ``beta`` x the mean
  squared difference of the teacher's and the student's logits; scoring uses the student;
- ``finetuning`` (``warm_up``: the distillation run's checkpoint): the student and the embeddings learn the labels.

Each checkpoint holds the whole model (embeddings, teacher, student), so ``teacher``, ``t_depth``, ``t_cin``,
``type``, ``depth`` and ``embedding_size`` must stay the same across the phases. The teacher reads the ``t_``
keys in place of its own (RecBole's rule): CrossNet ``t_depth`` layers, CIN ``t_cin`` sizes. No first order.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from recforge.config.types import Float, Int, Key, ListOf, Str
from recforge.errors import ConfigError
from recforge.models.context.base import ContextRecommender
from recforge.models.pretrained import load_pretrained
from recforge.registry import register_model

PHASES = ("teacher_training", "distillation", "finetuning")


class DAGFM(nn.Module):
    """The student: h_0 = C e (C the [F, F] connect layer, starting at the identity), then per layer
    h_t = h_0 * aggr(h_{t-1}) over the DAG of field pairs i <= j, with ``inner`` (aggr_s = sum_{f <= s} h_f * p_fs)
    or ``outer`` (aggr_s = sum_{f <= s} (h_f . p_fs) q_fs) interactions; logit = linear of every layer's per-field
    sums. p and q: Xavier-normal with gain 1.414, as RecBole's."""

    def __init__(self, fields: int, size: int, depth: int, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.p = nn.ParameterList(self._xavier(fields, size) for _ in range(depth))
        if kind == "outer":
            self.q = nn.ParameterList(self._xavier(fields, size) for _ in range(depth))
        upper = torch.ones(fields, fields).triu().unsqueeze(-1).expand(fields, fields, size)
        self.register_buffer("adjacency", upper.contiguous(), persistent=False)
        self.connect_layer = nn.Parameter(torch.eye(fields))
        self.linear = nn.Linear(fields * (depth + 1), 1)

    @staticmethod
    def _xavier(fields: int, size: int) -> nn.Parameter:
        return nn.Parameter(nn.init.xavier_normal_(torch.empty(fields, fields, size), gain=1.414))

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        """[B] logits of [B, F, d] embeddings."""
        h0 = self.connect_layer @ embeddings
        h, states = h0, [h0.sum(dim=-1)]
        for t, p in enumerate(self.p):
            if self.kind == "inner":
                aggregated = torch.einsum("bfd,fsd->bsd", h, p * self.adjacency)
            else:
                term = torch.einsum("bfd,fsd->bfs", h, p * self.adjacency)
                aggregated = torch.einsum("bfs,fsd->bsd", term, self.q[t])
            h = h0 * aggregated
            states.append(h.sum(dim=-1))
        return self.linear(torch.cat(states, dim=-1)).squeeze(-1)


class CrossNet(nn.Module):
    """Teacher: x_{l+1} = x0 * (W_l x_l + b_l) + x_l over the flattened embeddings (W standard normal, b zero, as
    RecBole's), logit = linear(x_L)."""

    def __init__(self, fields: int, size: int, depth: int) -> None:
        super().__init__()
        width = fields * size
        self.cross_layer_w = nn.ParameterList(nn.Parameter(torch.randn(width, width)) for _ in range(depth))
        self.bias = nn.ParameterList(nn.Parameter(torch.zeros(width)) for _ in range(depth))
        self.linear = nn.Linear(width, 1)

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        x0 = embeddings.flatten(1)
        x = x0
        for weight, bias in zip(self.cross_layer_w, self.bias, strict=True):
            x = x0 * (x @ weight.T + bias) + x
        return self.linear(x).squeeze(-1)


class CIN(nn.Module):
    """Teacher: compressed interaction layers without activation, X_k = conv1x1(X_{k-1} o X_0) (PyTorch's conv
    init, as RecBole's), logit = (every layer's rows summed over d) . w, w ~ N(0, 0.01^2)."""

    def __init__(self, fields: int, sizes: list[int]) -> None:
        super().__init__()
        rows = [fields, *sizes]
        self.cin = nn.ModuleList(nn.Conv1d(rows[k] * fields, rows[k + 1], 1) for k in range(len(sizes)))
        self.linear = nn.Parameter(torch.randn(sum(sizes), 1) * 0.01)

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        batch, _, size = embeddings.shape
        x, pooled = embeddings, []
        for conv in self.cin:
            x = conv((x.unsqueeze(2) * embeddings.unsqueeze(1)).reshape(batch, -1, size))
            pooled.append(x.sum(dim=-1))
        return (torch.cat(pooled, dim=-1) @ self.linear).squeeze(-1)


@register_model
class KD_DAGFM(ContextRecommender):
    """KD-DAGFM (Tian et al., WSDM 2023): see the module docstring."""

    hyper_parameters = (
        Key("teacher", Str(choices=("CrossNet", "CIN")), "CrossNet", "The teacher network."),
        Key("phase", Str(choices=PHASES), "teacher_training", "Which of the three runs this is."),
        Key("type", Str(choices=("inner", "outer")), "outer", "The student's interaction function."),
        Key("embedding_size", Int(minimum=1), 16, "Embedding size d of every feature field."),
        Key("t_depth", Int(minimum=0), 3, "Layers of the CrossNet teacher."),
        Key("depth", Int(minimum=0), 3, "Layers of the student."),
        Key("alpha", Float(minimum=0.0), 0.1, "Weight of the student's cross-entropy when distilling."),
        Key("beta", Float(minimum=0.0), 921.6, "Weight of the logits' mean squared difference when distilling."),
        Key("warm_up", Str(), "", "Checkpoint of the previous phase's run (distillation, finetuning)."),
        Key("t_cin", ListOf(Int(minimum=1), min_length=1), [200, 200, 200], "Layer sizes of the CIN teacher."),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        self.phase, self.alpha, self.beta = config["phase"], config["alpha"], config["beta"]
        fields, size = self.num_feature_field, self.embedding_size
        self.student_network = DAGFM(fields, size, config["depth"], config["type"])
        if config["teacher"] == "CrossNet":
            self.teacher_network: nn.Module = CrossNet(fields, size, config["t_depth"])
        else:
            self.teacher_network = CIN(fields, config["t_cin"])
        self.init_weights()  # RecBole's Xavier pass: embeddings and linear layers only
        if self.phase != "teacher_training":
            self._warm_up(config)

    def _warm_up(self, config) -> None:
        path, before = config["warm_up"], {"distillation": "teacher_training", "finetuning": "distillation"}
        if not path or not Path(path).expanduser().is_file():
            raise ConfigError(
                f"config key 'warm_up': {'empty' if not path else repr(path) + ' does not exist'}; phase "
                f"{self.phase} starts from the checkpoint of a {before[self.phase]} run of KD_DAGFM "
                "(its run folder's checkpoints/best.pth)"
            )
        load_pretrained(self, path, key="warm_up", dataset=config["dataset"])

    def logit(self, interaction) -> torch.Tensor:
        embeddings = self.embed(interaction)
        if self.phase == "teacher_training":
            return self.teacher_network(embeddings)
        if self.phase == "distillation":  # the embeddings stay as the teacher left them
            embeddings = embeddings.detach()
        return self.student_network(embeddings)

    def calculate_loss(self, interaction) -> torch.Tensor:
        if self.phase != "distillation":
            return super().calculate_loss(interaction)
        embeddings = self.embed(interaction).detach()
        student = self.student_network(embeddings)
        with torch.no_grad():
            teacher = self.teacher_network(embeddings)
        label = interaction[self.LABEL].float()
        ctr = self.loss_fn(student.float(), label)
        return self.alpha * ctr + self.beta * ((teacher - student) ** 2).float().mean()
