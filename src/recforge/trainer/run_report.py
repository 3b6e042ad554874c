"""``RunReport``: the run folder's ``report.html``, written by the trainer itself (``recforge.report``)."""

from __future__ import annotations

import logging

from recforge.trainer.callbacks import Callback

logger = logging.getLogger("recforge")


class RunReport(Callback):
    """A built-in callback of ``Trainer``: writes ``<run>/report.html`` when fit ends and again after the test split
    is evaluated (with its results), so a script wired by hand gets the report ``recforge run`` writes. Nothing is
    written with ``saved=False``; a failure is a warning, never the run's failure."""

    def on_fit_end(self, trainer) -> None:
        self._write(trainer)

    def on_evaluate_end(self, trainer, phase: str | None, result: dict[str, float]) -> None:
        if phase == "test":
            self._write(trainer)

    @staticmethod
    def _write(trainer) -> None:
        if not trainer.saved or not trainer.folder_ready:
            return
        try:
            from recforge.report import write_report  # the report reads run folders; it sits beside the trainer

            write_report(trainer.run_dir)
        except Exception as exc:
            logger.warning(
                "the run report %s/report.html was not written: %s: %s", trainer.run_dir, type(exc).__name__, exc
            )
