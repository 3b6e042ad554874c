"""NCLTrainer: NCL's schedule as an objective and a callback (no copy of ``fit``)."""

from __future__ import annotations

from recforge.registry import register_trainer
from recforge.trainer.callbacks import Callback, without_gradients
from recforge.trainer.objectives import Every, Objective
from recforge.trainer.trainer import Trainer

PROTOTYPE_PART = 2  # NCL's loss: (recommendation, structural, prototypical)


class EStep(Callback):
    """Before every epoch ``e`` with ``e % m_step == 0``: cluster the embeddings (k-means seeded by ``seed + e``)."""

    def __init__(self, m_step: int) -> None:
        self.schedule = Every(m_step)

    def on_epoch_start(self, trainer, epoch) -> None:
        if self.schedule.due(epoch):
            with without_gradients(trainer.model):
                trainer.model.e_step(seed=trainer.config["seed"] + epoch)


@register_trainer
class NCLTrainer(Trainer):
    """RecBole's NCLTrainer: before every epoch ``e`` with ``e % m_step == 0`` the E-step clusters the embeddings
    (k-means seeded by ``seed + e``); the prototypical loss (the last part of NCL's loss) counts from epoch
    ``warm_up_step`` on and is reported as 0 before. Everything else is ``Trainer``'s."""

    def __init__(self, config, model, **kwargs) -> None:
        super().__init__(config, model, **kwargs)
        self.callbacks.insert(0, EStep(config["m_step"]))

    def build_objectives(self) -> list[Objective]:
        return [Objective("loss", loss="calculate_loss", parts_from={PROTOTYPE_PART: self.config["warm_up_step"]})]
