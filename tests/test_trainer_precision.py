"""Mixed precision on the CPU: bf16 autocast (including sparse graph propagation), the GradScaler, clipping."""

import pytest
import torch

from conftest import tiny_config
from graph_model import TinyGraph
from recforge import Config, create_dataset, data_preparation, get_model_class, init_seed
from recforge.models.sparse import propagate
from recforge.trainer import Objective, Trainer

BF16_TOLERANCE = 0.005  # largest allowed |bf16 - fp32| of any test metric (measured: 0.0002)


def test_enable_amp_maps_onto_precision():
    assert Config("BPR")["precision"] == "fp32" and Config("BPR")["enable_scaler"] is False
    assert Config("BPR", config_dict={"enable_amp": True})["precision"] == "bf16"  # CPU: autocast's bf16
    fp16 = Config("BPR", config_dict={"precision": "fp16"})
    assert fp16["enable_scaler"] is True
    assert Config("BPR", config_dict={"precision": "fp16", "enable_scaler": False})["enable_scaler"] is False
    assert Config("BPR", config_dict={"enable_amp": True, "precision": "fp32"})["precision"] == "fp32"


@pytest.mark.slow
def test_bf16_trains_a_graph_model_close_to_fp32():
    results = {}
    for precision in ("fp32", "bf16"):
        config = Config(
            TinyGraph,
            "ml-latest-small",
            config_dict={
                "epochs": 3,
                "learning_rate": 0.005,
                "precision": precision,
                "train_batch_size": 4096,
                "show_progress": False,
            },
        )
        init_seed(2020)
        train, valid, test = data_preparation(config, create_dataset(config))
        init_seed(2020)
        model = TinyGraph(config, train.dataset)
        trainer = Trainer(config, model)
        trainer.fit(train, valid, verbose=False, saved=False)
        assert all(torch.isfinite(torch.tensor(v)) for v in trainer.train_loss_dict.values())
        results[precision] = (trainer.evaluate(test), model.dtypes)
    assert torch.bfloat16 in results["bf16"][1] and torch.bfloat16 not in results["fp32"][1]
    for key, value in results["fp32"][0].items():
        assert abs(results["bf16"][0][key] - value) <= BF16_TOLERANCE, key


def test_sparse_propagation_under_bf16_autocast():
    adjacency = torch.sparse_coo_tensor(
        torch.tensor([[0, 1, 2], [1, 2, 0]]), torch.ones(3), (3, 3), check_invariants=True
    ).coalesce()
    embedding, linear = torch.nn.Embedding(3, 4), torch.nn.Linear(4, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        hidden = linear(embedding.weight)
        assert hidden.dtype == torch.bfloat16
        plain = torch.sparse.mm(adjacency, hidden).sum()
    with pytest.raises(RuntimeError, match="expected scalar type Float but found BFloat16"):
        plain.backward()  # what breaks RecBole's LightGCN with enable_amp on a CPU
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = propagate(adjacency, linear(embedding.weight), transposed=adjacency.t().coalesce())
    out.sum().backward()
    assert out.dtype == torch.float32 and embedding.weight.grad is not None


def one_batch_trainer(tiny_path, **overrides):
    values = {"learner": "sgd", "learning_rate": 1.0, "train_batch_size": 100, **overrides}
    config = tiny_config(tiny_path, "BPR", **values)
    init_seed(0)
    train, valid, _ = data_preparation(config, create_dataset(config))
    model = get_model_class("BPR")(config, train.dataset)
    return Trainer(config, model, run_dir=tiny_path / "run"), train, valid


def test_clipping_sees_unscaled_gradients(tiny_path):
    trainer, train, _ = one_batch_trainer(tiny_path, precision="fp16", clip_grad_norm={"max_norm": 1e-3})
    assert trainer.precision.scaler.is_enabled() and trainer.precision.scaler.get_scale() == 65536.0
    before = torch.cat([p.detach().flatten().clone() for p in trainer.model.parameters()])
    trainer._train_epoch(train, 0)
    after = torch.cat([p.detach().flatten() for p in trainer.model.parameters()])
    # SGD with lr 1 moves by the clipped gradient: 1e-3 exactly, not 1e-3 / 65536 as clipping scaled grads would.
    assert torch.linalg.vector_norm(after - before).item() == pytest.approx(1e-3, rel=1e-3)


def test_one_grad_scaler_per_run_saved_and_restored(tiny_path):
    trainer, train, valid = one_batch_trainer(tiny_path, precision="fp16", epochs=3, learning_rate=0.01)
    scaler = trainer.precision.scaler
    trainer.fit(train, valid, verbose=False)
    assert trainer.precision.scaler is scaler and scaler._growth_tracker == 3  # never re-created
    state = torch.load(trainer.checkpoint_path("last"), weights_only=True)
    assert state["scaler"]["scale"] == 65536.0 and state["scaler"]["_growth_tracker"] == 3
    other, _, _ = one_batch_trainer(tiny_path, precision="fp16", epochs=3, learning_rate=0.01)
    other.resume_checkpoint(trainer.checkpoint_path("last"))
    assert other.precision.scaler.state_dict()["_growth_tracker"] == 3


@pytest.mark.parametrize(("accumulation", "batch_size", "epochs", "steps"), [(1, 100, 3, 3), (2, 4, 2, 4)])
def test_fp16_with_two_objectives_updates_the_scale_once_per_step(tiny_path, accumulation, batch_size, epochs, steps):
    """One ``scaler.step`` and one ``scaler.update()`` per optimisation step, whatever the number of objectives.
    12 training interactions: one batch of 100, or three of 4 with a step every 2 batches (and at the epoch's end);
    each of the two objectives makes its own pass."""
    values = {"precision": "fp16", "epochs": epochs, "learning_rate": 0.01, "train_batch_size": batch_size}
    config = tiny_config(tiny_path, "BPR", gradient_accumulation_steps=accumulation, **values)
    init_seed(0)
    train, valid, _ = data_preparation(config, create_dataset(config))
    model = get_model_class("BPR")(config, train.dataset)
    trainer = Trainer(config, model, objectives=[Objective("first"), Objective("second")])
    scaler = trainer.precision.scaler
    updates, stepped = [], []
    real_update, real_step = scaler.update, scaler.step
    scaler.update = lambda *a, **k: (updates.append(1), real_update(*a, **k))[1]
    scaler.step = lambda optimizer, *a, **k: (stepped.append(optimizer), real_step(optimizer, *a, **k))[1]
    trainer.fit(train, valid, verbose=False, saved=False)
    assert len(updates) == len(stepped) == 2 * steps  # each objective's steps: one step, one update each
    assert scaler._growth_tracker == 2 * steps
