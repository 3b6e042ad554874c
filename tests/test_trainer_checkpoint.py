"""Checkpoint files: written atomically, loadable with ``torch.load(weights_only=True)``, foreign files refused."""

import pytest
import torch

from recforge.errors import CheckpointError
from recforge.trainer.checkpoint import load_checkpoint, save_checkpoint


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "ck.pth"
    save_checkpoint({"model": {"w": torch.ones(3)}, "epoch": 1}, path)

    def crash(obj, handle, *args, **kwargs):
        handle.write(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        save_checkpoint({"model": {"w": torch.zeros(3)}, "epoch": 2}, path)
    monkeypatch.undo()
    state = load_checkpoint(path)
    assert state["epoch"] == 1 and torch.equal(state["model"]["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pth"]  # no temporary file left


def test_checkpoint_loads_with_weights_only(tmp_path):
    path = save_checkpoint(
        {"model": {"w": torch.ones(2)}, "config": {"a": [1, 2], "b": None}, "epoch": 0}, tmp_path / "c.pth"
    )
    state = torch.load(path, weights_only=True)
    assert state["format"] == "recforge.checkpoint" and state["config"] == {"a": [1, 2], "b": None}
    torch.save({"something": 1}, tmp_path / "foreign.pth")
    with pytest.raises(CheckpointError, match="is not a recforge checkpoint"):
        load_checkpoint(tmp_path / "foreign.pth")
