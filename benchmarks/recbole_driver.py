"""Run one RecBole 1.2.1 scenario and print one JSON line of measurements (the peer side of compare.py).

Runs inside a RecBole environment (see ../shared/peer/setup_recbole_venv.sh) and imports nothing from
recforge. Stages and fields match ``recforge_driver.py``: ``import``, ``load`` (create_dataset +
data_preparation), ``epoch`` (median ``_train_epoch``), ``eval`` (median ``_valid_epoch``), ``test`` (final test
evaluation), ``peak_rss_mb`` and the test ``metrics``.

    $RECBOLE_PYTHON benchmarks/recbole_driver.py --model BPR --dataset ml-100k --data-path ../shared/datasets

RecBole quirks handled here: it parses ``sys.argv`` as config (cleared first); it ignores ``data_path`` for
ml-100k (set again after Config); its checkpoints pickle the Config, which torch >= 2.6 refuses to load
(``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``); ``eval_batch_size`` counts user x item cells (set from ``--eval-users``);
its tree models' defaults are in lower-case files (lightgbm.yaml, xgboost.yaml) that Config does not find by itself.
KSR keeps its preloaded relation vectors in float64 and fails in ``memory_read``: cast to float32 after building.
For trees, ``features`` times one build of the training and validation matrices (``_interaction_to_sparse``) and
``epoch`` one ``_train_at_once`` (matrices + boosting run).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

STARTED = time.perf_counter()
sys.path.insert(0, str(Path(__file__).resolve().parent))
from driver_common import base_record, experiment, parse, peak_rss_mb, time_method  # noqa: E402


def install_dgl_shim() -> None:
    """RecBole 1.2.1's KGAT calls ``dgl.edge_subgraph(..., preserve_nodes=True)`` and
    ``graph.adjacency_matrix(transpose=..., scipy_fmt=...)``, keywords dgl 1.x dropped; translate them at run time
    (RecBole's files are not touched), so that KGAT's cost can be measured with the only dgl that installs beside
    torch 2.13."""
    import dgl

    edge_subgraph = dgl.edge_subgraph

    def edge_subgraph_0x(graph, edges, *args, preserve_nodes=None, **kwargs):
        if preserve_nodes is not None:
            kwargs.setdefault("relabel_nodes", not preserve_nodes)
        return edge_subgraph(graph, edges, *args, **kwargs)

    adjacency_matrix = dgl.DGLGraph.adjacency_matrix

    def adjacency_matrix_0x(self, transpose=None, ctx=None, scipy_fmt=None, etype=None):
        if transpose is None and ctx is None and scipy_fmt is None:
            return adjacency_matrix(self, etype=etype)
        options = {"transpose": bool(transpose), "scipy_fmt": scipy_fmt, "etype": etype}
        return self.adj_external(**options, **({"ctx": ctx} if ctx is not None else {}))

    dgl.edge_subgraph = edge_subgraph_0x
    dgl.DGLGraph.adjacency_matrix = adjacency_matrix_0x


def install_scatter_shim() -> None:
    """RecBole 1.2.1's KGIN and MCCLK import ``scatter_mean`` / ``scatter_softmax`` from torch_scatter, which has no
    wheel for torch 2.13; provide the two functions (dimension 0, as RecBole calls them) with torch's own
    ``index_add_`` / ``scatter_reduce`` as a module named torch_scatter, so that their cost can be measured."""
    import types

    import torch

    def scatter_mean(src, index, dim=0, dim_size=None):
        size = int(index.max()) + 1 if dim_size is None else dim_size
        total = torch.zeros((size, *src.shape[1:]), dtype=src.dtype, device=src.device).index_add_(0, index, src)
        count = torch.zeros(size, dtype=src.dtype, device=src.device).index_add_(
            0, index, torch.ones_like(index, dtype=src.dtype)
        )
        return total / count.clamp(min=1).view(-1, *([1] * (src.dim() - 1)))

    def scatter_softmax(src, index, dim=0):
        size = int(index.max()) + 1
        expanded = index.view(-1, *([1] * (src.dim() - 1))).expand_as(src)
        peak = torch.full((size, *src.shape[1:]), float("-inf"), dtype=src.dtype, device=src.device)
        peak = peak.scatter_reduce(0, expanded, src, reduce="amax", include_self=True)
        exponentials = (src - peak.gather(0, expanded)).exp()
        total = torch.zeros_like(peak).index_add_(0, index, exponentials)
        return exponentials / total.gather(0, expanded)

    module = types.ModuleType("torch_scatter")
    module.scatter_mean, module.scatter_softmax = scatter_mean, scatter_softmax
    sys.modules["torch_scatter"] = module


def main(argv=None) -> None:
    args = parse(__doc__.splitlines()[0], argv)
    sys.argv = sys.argv[:1]
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    workdir = tempfile.mkdtemp(prefix="recbole-bench-")
    os.chdir(workdir)  # RecBole writes log/ and saved/ into the working directory
    import logging

    import torch
    import yaml
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    imported = time.perf_counter() - STARTED
    if args.dgl_shim:
        install_dgl_shim()
    if args.scatter_shim:
        install_scatter_shim()
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    import recbole

    # Config reads properties/model/<model>.yaml case-sensitively; LightGBM / XGBoost ship lightgbm.yaml / xgboost.yaml.
    model_yaml = Path(recbole.__file__).parent / "properties" / "model" / f"{args.model.lower()}.yaml"
    config = Config(
        model=args.model,
        dataset=args.dataset,
        config_file_list=[str(model_yaml)] if args.model in ("LightGBM", "XGBoost") else None,
        config_dict={**experiment(args, overrides), "gpu_id": "", "checkpoint_dir": os.path.join(workdir, "saved")},
    )
    config["data_path"] = os.path.join(args.data_path, args.dataset)
    logging.getLogger().setLevel(logging.WARNING)
    init_seed(config["seed"], config["reproducibility"])
    started = time.perf_counter()
    dataset = create_dataset(config)
    # recforge counts users per evaluation batch; RecBole counts user x item cells.
    config["eval_batch_size"] = max(args.eval_users, 1) * int(dataset.item_num)
    train, valid, test = data_preparation(config, dataset)
    load = time.perf_counter() - started
    record = base_record("recbole", args, imported, load, dataset, torch.get_num_threads())
    if not args.load_only:
        init_seed(config["seed"], config["reproducibility"])
        model = get_model(config["model"])(config, train._dataset).to(config["device"])
        if hasattr(model, "relation_Matrix"):  # KSR keeps its preloaded float64 and fails on it (float32 mm)
            model.relation_Matrix = model.relation_Matrix.float()
        trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
        epochs, evals = [], []
        if hasattr(trainer, "_interaction_to_sparse"):  # trees: one build of the training + validation matrices
            started = time.perf_counter()
            trainer._interaction_to_sparse(train)
            trainer._interaction_to_sparse(valid)
            record["features"] = time.perf_counter() - started
        time_method(trainer, "_train_at_once" if hasattr(trainer, "_train_at_once") else "_train_epoch", epochs)
        time_method(trainer, "_valid_epoch", evals)
        fit = 0.0
        if not args.skip_train:
            started = time.perf_counter()
            trainer.fit(train, valid, verbose=False, saved=True, show_progress=False)
            fit = time.perf_counter() - started
        started = time.perf_counter()
        result = trainer.evaluate(test, load_best_model=not args.skip_train, show_progress=False)
        record.update(
            fit=fit,
            test=time.perf_counter() - started,
            epoch=statistics.median(epochs) if epochs else None,
            eval=statistics.median(evals) if evals else None,
            epochs_run=len(epochs),
            metrics={k: float(v) for k, v in result.items()},
        )
    record["peak_rss_mb"] = peak_rss_mb()
    sys.stdout.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
