"""Softmax-CPR (Chang, Agarwal & McCallum, WSDM 2024): the output layer of SASRecCPR and GRU4RecCPR, computed as
RecBole 1.2.1's ``calculate_loss_prob`` (recbole/model/sequential_recommender/sasreccpr.py, gru4reccpr.py).

The encoder gives hidden states [B, L, d] per layer (top last); E [N, d] is the output item table (N = n_items,
padding id 0 included) and C = len(reranker_CAN_NUM). Per history:

1. Multiple input hidden states: each of the top ``H = min(n_facet_hidden, layers)`` layers' states is read with
   its ``W = -n_facet_window`` predecessors (shifted right, zero-filled), and with ``M = -n_facet_MLP`` > 0
   ``raw_t = [top_t; gelu_tanh(MLP_linear([read states at t]))]`` [B, L, d (1 + M)] (M = 0: ``raw_t = top_t``).
   The query is ``q = raw_{L-1}`` [B, d (1 + M)].
2. Facets (``project_arr``; main i: i, reranker (i, j): n_facet + i C + j, context i: n_facet + n_facet_reranker C
   + i, pointer: the last two): main facet i's logits are ``z_i = project_arr[i](q) E^T`` [B, N].
3. Reranker partitions (facet i < n_facet_reranker; j = 0..C-1 in order): the top reranker_CAN_NUM[j] items of the
   current z_i get ``project_arr[n_facet + i C + j](q) . E[v]``, replacing their logit (reranker_merging_mode
   'add': added to it).
4. Context partition and pointer network (facet i < n_facet_context): history position t scores its item
   ``project_arr[ctx i](q) . E[seq_t]`` plus, with n_facet_emb 2, ``project_arr[-2](raw_{L-1}) .
   project_arr[-1](raw_t)``; an item's new logit is the mean of its positions' scores (context_norm false: the
   context mean plus the pointer sum), which replaces (partition_merging_mode 'replace'), is added to ('add') or
   is added to the halved ('half', GRU4RecCPR only) logit of each history item.
5. Mixture: the facets' softmaxes averaged (weight_mode ''), weighted by softmax(weight_facet_decoder(q))
   ('dynamic') or by softmax(weight_global) ('static'); 'max_logits': the softmax of the facets' elementwise max.

Scores are these probabilities [B, N]; the loss is ``-log(p[target] + 1e-8)`` averaged over the rows.

RecBole's oddities kept (they define the results): (1) the query, and the pointer's query, are read at the last
padded slot L-1, not at ``item_length - 1`` (item_length is unused), as in the authors' code; (2) padding positions
are context occurrences of item 0, so item 0 gets a context logit, stays in the softmax and takes probability
mass in training (the evaluator masks it); (3) each reranker partition picks its candidates from the logits the
previous (larger) one already rewrote, and item 0 can be a candidate; (4) with context_norm false the context
scores are averaged over an item's positions but the pointer scores summed; (5) the query MLP's activation is the
tanh-approximated GELU; (6) ``project_emb`` is built and never used, and ``weight_facet_decoder`` /
``weight_global`` are built for any non-empty weight_mode and used by one each (kept: the same parameters, random
draws and state dict as RecBole); (7) n_facet_hidden is capped at the encoder's layers without a word;
(8) post_remove_context zeroes item 0 too.

Crashes of RecBole fixed: reranker_CAN_NUM may be one integer, a comma string ('500,100,20', RecBole's only form)
or a YAML list (RecBole's ``int()`` fails on a list); a partition larger than the catalogue takes every item
(RecBole's ``topk`` fails); context_norm false without the pointer network works (RecBole passes ``0`` as a
scatter source); n_facet_context or n_facet_reranker above n_facet, n_facet_all not the sum of the facets and
n_facet_emb 1 are ConfigErrors naming the key (RecBole: IndexError or a bare assert).

Differences from RecBole, on purpose: ``predict`` gives ``full_sort_predict``'s scores at the given items (RecBole:
``assert False``); ``full_sort_predict`` computes no loss (RecBole computes one and needs the target); loss_type
BPR is a ConfigError (RecBole calls ``sys.exit``); weight_mode and the merging modes accept only the values they
name (RecBole reads any other weight_mode as '', any other reranker_merging_mode as 'replace', any other
partition_merging_mode as 'add' in SASRecCPR and as no merge at all in GRU4RecCPR); context_norm, use_proj_bias
and post_remove_context are booleans (RecBole: any integer, read as its truth value).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from recforge.config.types import Anything, Bool, Int, Key, Str
from recforge.errors import ConfigError, did_you_mean
from recforge.models.sequential.base import SequentialRecommender

WEIGHT_MODES = ("", "dynamic", "static", "max_logits")
LOG_EPSILON = 1e-8  # RecBole's log(p + 1e-8)
COUNT_EPSILON = 1e-15  # RecBole's occurrence counts start here: items outside the history divide 0 by it


def cpr_keys(n_facet_hidden: int, partition_modes: tuple[str, ...]) -> tuple[Key, ...]:
    """Softmax-CPR's keys with RecBole's defaults (``n_facet_hidden``'s differs by model); ``partition_modes``: the
    values of partition_merging_mode the model implements."""
    return (
        Key("loss_type", Str(choices=("CE",)), "CE", "CE only: cross-entropy of the target against every item."),
        Key(
            "n_facet_all",
            Int(minimum=1),
            5,
            "Facet projections: n_facet + n_facet_context + n_facet_reranker x len(reranker_CAN_NUM) + n_facet_emb.",
        ),
        Key("n_facet", Int(minimum=1), 1, "Softmaxes over every item (more than 1: a mixture of softmaxes)."),
        Key("n_facet_context", Int(minimum=0), 1, "Facets given a context partition (the history's items)."),
        Key("n_facet_reranker", Int(minimum=0), 1, "Facets given reranker partitions (their top items)."),
        Key(
            "reranker_CAN_NUM",
            Anything(),
            100,
            "Sizes of the reranker partitions, descending: an integer, a comma string ('500,100,20') or a list.",
        ),
        Key("n_facet_emb", Int(minimum=0, maximum=2), 2, "2: the pointer network scores the history's items; 0: none."),
        Key("n_facet_hidden", Int(minimum=1), n_facet_hidden, "Encoder layers read by the query, from the top."),
        Key("n_facet_window", Int(maximum=0), -2, "Minus the number of preceding positions read with each state."),
        Key("n_facet_MLP", Int(maximum=0), -1, "Minus the query MLP's width in units of d (0: no MLP)."),
        Key(
            "weight_mode",
            Str(),
            "",
            "How the facets mix: '' (mean of softmaxes), dynamic, static (learnt weights), max_logits.",
        ),
        Key("context_norm", Bool(), True, "Average an item's scores over its history positions (false: pointer sum)."),
        Key(
            "partition_merging_mode",
            Str(choices=partition_modes),
            "replace",
            "How the context partition's logits merge with the others: " + ", ".join(partition_modes) + ".",
        ),
        Key(
            "reranker_merging_mode",
            Str(choices=("replace", "add")),
            "replace",
            "How a reranker partition's logits merge with the softmax's: replace or add.",
        ),
        Key("use_proj_bias", Bool(), True, "Biases in the facet projections."),
        Key("post_remove_context", Bool(), False, "Score the history's items (and padding) 0 when predicting."),
    )


def candidate_sizes(value: Any) -> tuple[int, ...]:
    """reranker_CAN_NUM as sizes: an integer, RecBole's comma string ('500,100,20') or a list."""
    parts = value if isinstance(value, (list, tuple)) else str(value).split(",")
    try:
        sizes = tuple(int(str(part).strip()) for part in parts if not isinstance(part, bool))
    except ValueError:
        sizes = ()
    if not sizes or len(sizes) != len(parts) or min(sizes) < 0:
        raise ConfigError(
            f"config key 'reranker_CAN_NUM': {value!r} is not a size or sizes of reranker partitions "
            "(an integer, a comma string such as '500,100,20' or a list of integers)"
        )
    return sizes


@dataclass(frozen=True)
class CPRSettings:
    """The output layer's settings, checked (RecBole's names in the docstrings of ``cpr_keys``)."""

    n_facet: int
    n_context: int
    n_reranker: int
    sizes: tuple[int, ...]
    pointer: bool
    n_hidden: int  # H
    window: int  # W
    mlp: int  # M
    weight_mode: str
    context_norm: bool
    partition_merging: str
    reranker_merging: str
    post_remove_context: bool

    @classmethod
    def from_config(cls, config: Mapping[str, Any], layers: int, states: int) -> CPRSettings:
        """``layers``: the encoder's layers (RecBole's cap on n_facet_hidden); ``states``: the hidden states it
        gives."""
        n_facet, n_context, n_reranker = config["n_facet"], config["n_facet_context"], config["n_facet_reranker"]
        sizes, n_emb = candidate_sizes(config["reranker_CAN_NUM"]), config["n_facet_emb"]
        for key, value in (("n_facet_context", n_context), ("n_facet_reranker", n_reranker)):
            if value > n_facet:
                raise ConfigError(
                    f"config key '{key}': {value} is more than n_facet ({n_facet}), the facets it merges into"
                )
        if config["weight_mode"] not in WEIGHT_MODES:
            raise ConfigError(
                f"config key 'weight_mode': {config['weight_mode']!r} is not '' (the mean), 'dynamic', 'static' or "
                f"'max_logits'{did_you_mean(config['weight_mode'], WEIGHT_MODES[1:])}"
            )
        if n_emb == 1:
            raise ConfigError("config key 'n_facet_emb': 1 is not 0 or 2 (the pointer network's two projections)")
        total = n_facet + n_context + n_reranker * len(sizes) + n_emb
        if config["n_facet_all"] != total:
            raise ConfigError(
                f"config key 'n_facet_all': {config['n_facet_all']} is not n_facet + n_facet_context + "
                f"n_facet_reranker x len(reranker_CAN_NUM) + n_facet_emb = {n_facet} + {n_context} + "
                f"{n_reranker} x {len(sizes)} + {n_emb} = {total}"
            )
        n_hidden = min(config["n_facet_hidden"], layers)
        if n_hidden > states:
            raise ConfigError(
                f"config key 'n_facet_hidden': {n_hidden} layers to read, but the encoder gives {states} hidden "
                f"state(s); set n_facet_hidden: {states}"
            )
        return cls(
            n_facet=n_facet,
            n_context=n_context,
            n_reranker=n_reranker,
            sizes=sizes,
            pointer=n_emb == 2,
            n_hidden=n_hidden,
            window=-config["n_facet_window"],
            mlp=-config["n_facet_MLP"],
            weight_mode=config["weight_mode"],
            context_norm=config["context_norm"],
            partition_merging=config["partition_merging_mode"],
            reranker_merging=config["reranker_merging_mode"],
            post_remove_context=config["post_remove_context"],
        )

    @property
    def n_effective(self) -> int:
        """The facets mixed: one for max_logits (the elementwise max), else n_facet."""
        return 1 if self.weight_mode == "max_logits" else self.n_facet

    def reranker_facet(self, facet: int, partition: int) -> int:
        return self.n_facet + facet * len(self.sizes) + partition

    def context_facet(self, facet: int) -> int:
        return self.n_facet + self.n_reranker * len(self.sizes) + facet


def shifted(states: torch.Tensor, steps: int) -> torch.Tensor:
    """[B, L, d] moved ``steps`` positions later along L, zero-filled: position t holds ``states[:, t - steps]``."""
    if steps >= states.shape[1]:
        return torch.zeros_like(states)
    return F.pad(states[:, :-steps], (0, 0, steps, 0))


class SoftmaxCPRRecommender(SequentialRecommender):
    """A sequential model with the Softmax-CPR output layer (see the module docstring). A subclass builds its
    encoder, calls ``build_output_layer`` where RecBole builds these layers (the order of random draws), and
    implements ``forward`` (hidden states per layer, top last) and ``output_items`` (the table E)."""

    cpr: CPRSettings

    def build_output_layer(self, dim: int, layers: int, states: int) -> None:
        """RecBole's ``MLP_linear``, ``project_arr``, ``project_emb`` and (weight_mode set) ``weight_facet_decoder``,
        ``weight_global`` for hidden states of size ``dim``; ``layers`` and ``states`` as ``CPRSettings``."""
        self.cpr = settings = CPRSettings.from_config(self.config, layers, states)
        with warnings.catch_warnings():  # M = 0: RecBole's zero-width layer, whose initialisation is a no-op
            warnings.filterwarnings("ignore", message="Initializing zero-element tensors is a no-op")
            self.MLP_linear = nn.Linear(dim * settings.n_hidden * (settings.window + 1), dim * settings.mlp)
        width, bias = dim * (1 + settings.mlp), self.config["use_proj_bias"]
        self.project_arr = nn.ModuleList(nn.Linear(width, dim, bias=bias) for _ in range(self.config["n_facet_all"]))
        self.project_emb = nn.Linear(dim, dim, bias=bias)  # unused, as in RecBole
        if settings.weight_mode:
            self.weight_facet_decoder = nn.Linear(width, settings.n_effective)
            self.weight_global = nn.Parameter(torch.ones(settings.n_effective))

    def forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> list[torch.Tensor]:
        """The encoder's hidden states [B, L, d], one per layer, the top one last."""
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def output_items(self) -> torch.Tensor:
        """The output item table E [n_items, d]."""
        return self.item_embedding.weight

    def query_states(self, hidden_states: list[torch.Tensor]) -> torch.Tensor:
        """[B, L, d] per layer -> ``raw`` [B, L, d (1 + M)]: the top state and the MLP of the read states."""
        settings = self.cpr
        read = []
        for states in hidden_states[::-1][: settings.n_hidden]:
            read += [states, *(shifted(states, steps) for steps in range(1, settings.window + 1))]
        if settings.mlp == 0:
            return read[0]
        return torch.cat([read[0], F.gelu(self.MLP_linear(torch.cat(read, dim=-1)), approximate="tanh")], dim=-1)

    def probabilities(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        """[B, L], [B] -> the next item's probabilities [B, n_items] (float32)."""
        settings = self.cpr
        raw = self.query_states(self.forward(item_seq, item_seq_len))
        query, table = raw[:, -1], self.output_items()  # RecBole reads the query at slot L-1
        logits = [F.linear(self.project_arr[i](query), table).float() for i in range(settings.n_facet)]
        for i in range(settings.n_reranker):
            logits[i] = self.rerank(logits[i], query, table, i)
        if settings.n_context:
            ones = torch.ones_like(item_seq, dtype=logits[0].dtype)
            count = torch.full_like(logits[0], COUNT_EPSILON).scatter_add(1, item_seq, ones)
            pointer = self.pointer_scores(raw) if settings.pointer else None
            history = table[item_seq]  # [B, L, d]
            for i in range(settings.n_context):
                context = torch.einsum("bld,bd->bl", history, self.project_arr[settings.context_facet(i)](query))
                logits[i] = self.merge_context(logits[i], context.float(), pointer, item_seq, count)
        return self.mix(logits, query)

    def rerank(self, logits: torch.Tensor, query: torch.Tensor, table: torch.Tensor, facet: int) -> torch.Tensor:
        """Facet ``facet``'s logits [B, N] with its reranker partitions' logits merged in, largest partition first
        (each picks its candidates from the logits the previous one rewrote)."""
        for partition, size in enumerate(self.cpr.sizes):
            candidates = logits.topk(min(size, logits.shape[1]), dim=1).indices  # [B, K]
            projected = self.project_arr[self.cpr.reranker_facet(facet, partition)](query)  # [B, d]
            scores = torch.einsum("bkd,bd->bk", table[candidates], projected).float()
            if self.cpr.reranker_merging == "add":
                logits = logits.scatter_add(1, candidates, scores)
            else:
                logits = logits.scatter(1, candidates, scores)
        return logits

    def pointer_scores(self, raw: torch.Tensor) -> torch.Tensor:
        """The pointer network's score of each history position [B, L]: ``project_arr[-2](raw_{L-1}) .
        project_arr[-1](raw_t)``."""
        return torch.einsum("bld,bd->bl", self.project_arr[-1](raw), self.project_arr[-2](raw[:, -1])).float()

    def merge_context(
        self,
        logits: torch.Tensor,
        context: torch.Tensor,
        pointer: torch.Tensor | None,
        item_seq: torch.Tensor,
        count: torch.Tensor,
    ) -> torch.Tensor:
        """Logits [B, N] with the history items' context (+ pointer) logits merged in; ``context``, ``pointer``:
        per position [B, L]; ``count``: each item's positions [B, N] (+ 1e-15)."""
        settings = self.cpr
        if pointer is not None and settings.context_norm:
            context = context + pointer
        new = torch.zeros_like(logits).scatter_add(1, item_seq, context) / count
        if pointer is not None and not settings.context_norm:
            new = new.scatter_add(1, item_seq, pointer)
        in_history = count >= 1
        if settings.partition_merging == "replace":
            logits = logits.masked_fill(in_history, 0.0)
        elif settings.partition_merging == "half":
            logits = logits / torch.where(in_history, 2.0, 1.0)
        return logits + new

    def mix(self, logits: list[torch.Tensor], query: torch.Tensor) -> torch.Tensor:
        """The facets' logits [B, N] each -> the mixture's probabilities [B, N] (weight_mode)."""
        mode = self.cpr.weight_mode
        if mode == "max_logits":
            return torch.stack(logits).amax(dim=0).softmax(dim=-1)
        if mode == "dynamic":
            weights = self.weight_facet_decoder(query).float().softmax(dim=-1)  # [B, F]
            return sum(z.softmax(dim=-1) * weights[:, i, None] for i, z in enumerate(logits))
        if mode == "static":
            weights = self.weight_global.softmax(dim=-1)
            return sum(z.softmax(dim=-1) * weights[i] for i, z in enumerate(logits))
        return sum(z.softmax(dim=-1) / len(logits) for z in logits)

    def probability_loss(self, probabilities: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """SASRecCPR's loss: the mean of ``-log(p[target] + 1e-8)`` (NLL with ignore_index 0, a row of target 0
        counted as 0)."""
        log_probabilities = torch.log(probabilities + LOG_EPSILON)
        return F.nll_loss(log_probabilities, targets, ignore_index=0, reduction="none").mean()

    def calculate_loss(self, interaction) -> torch.Tensor:
        probabilities = self.probabilities(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN])
        return self.probability_loss(probabilities, interaction[self.POS_ITEM_ID])

    def full_sort_predict(self, interaction) -> torch.Tensor:
        """The probabilities [B, n_items] (post_remove_context: 0 at the history's items and padding)."""
        item_seq = interaction[self.ITEM_SEQ]
        probabilities = self.probabilities(item_seq, interaction[self.ITEM_SEQ_LEN])
        if self.cpr.post_remove_context:
            probabilities = probabilities.scatter(1, item_seq, 0.0)
        return probabilities

    def predict(self, interaction) -> torch.Tensor:
        """``full_sort_predict``'s scores at ``interaction[ITEM_ID]`` [B] (RecBole: ``assert False``)."""
        items = interaction[self.ITEM_ID].unsqueeze(1)
        return self.full_sort_predict(interaction).gather(1, items).squeeze(1)
