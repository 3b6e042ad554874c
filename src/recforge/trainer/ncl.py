"""NCLTrainer: NCL's schedule as a configuration of the objectives and epoch hooks (no copy of ``fit``)."""

from __future__ import annotations

from recforge.registry import register_trainer
from recforge.trainer.objectives import EpochHook, Objective, ncl_plan
from recforge.trainer.trainer import Trainer


@register_trainer
class NCLTrainer(Trainer):
    """RecBole's NCLTrainer: before every epoch ``e`` with ``e % m_step == 0`` the E-step clusters the embeddings
    (k-means seeded by ``seed + e``); the prototypical loss (the last part of NCL's loss) counts from epoch
    ``warm_up_step`` on and is reported as 0 before. Everything else is ``Trainer``'s."""

    def build_objectives(self) -> list[Objective]:
        return ncl_plan(self.config["m_step"], self.config["warm_up_step"])[0]

    def build_hooks(self) -> list[EpochHook]:
        return [*super().build_hooks(), *ncl_plan(self.config["m_step"], self.config["warm_up_step"])[1]]
