"""Shared fixtures: tiny atomic-file data sets written to a temporary folder, and config helpers."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch

from recforge.config import Config

# Tests never reach the network (test_download serves its archive from a local HTTP server) and never write
# the processed-data cache into the home folder.
os.environ.setdefault("RECFORGE_NO_DOWNLOAD", "1")
os.environ.setdefault("RECFORGE_CACHE_DIR", tempfile.mkdtemp(prefix="recforge-test-cache-"))

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATASETS = Path(os.environ.get("RECFORGE_SHARED_DATASETS", ROOT.parent / "shared" / "datasets"))
ML100K = SHARED_DATASETS / "ml-100k"
ML_LATEST_SMALL_RAW = SHARED_DATASETS / "ml-latest-small"

needs_ml100k = pytest.mark.skipif(not (ML100K / "ml-100k.inter").is_file(), reason="ml-100k not found in ../shared")


def write_atomic(folder: Path, name: str, suffix: str, header: list[str], rows: list[list[object]]) -> Path:
    """Write ``<folder>/<name>/<name>.<suffix>`` with a header and tab-separated rows."""
    path = folder / name / f"{name}.{suffix}"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["\t".join(header)] + ["\t".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# Four users with five time-stamped interactions each. With RS [0.6, 0.2, 0.2] by user and TO order, each
# user's first three go to train, the fourth to valid and the fifth to test.
TINY_INTER = [
    ("u1", "i1", 5, 1),
    ("u1", "i2", 4, 2),
    ("u1", "i3", 3, 3),
    ("u1", "i4", 2, 4),
    ("u1", "i5", 1, 5),
    ("u2", "i1", 5, 1),
    ("u2", "i2", 4, 2),
    ("u2", "i6", 3, 3),
    ("u2", "i3", 2, 4),
    ("u2", "i4", 1, 5),
    ("u3", "i2", 5, 1),
    ("u3", "i1", 4, 2),
    ("u3", "i5", 3, 3),
    ("u3", "i6", 2, 4),
    ("u3", "i3", 1, 5),
    ("u4", "i1", 5, 1),
    ("u4", "i3", 4, 2),
    ("u4", "i2", 3, 3),
    ("u4", "i5", 2, 4),
    ("u4", "i6", 1, 5),
]


@pytest.fixture
def one_thread():
    """Tiny tensors: one thread (two threads spin against each other when the shared machine is busy)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_path(tmp_path: Path) -> Path:
    """A data_path holding the data set 'tiny' (TINY_INTER) and its .item file."""
    write_atomic(
        tmp_path,
        "tiny",
        "inter",
        ["user_id:token", "item_id:token", "rating:float", "timestamp:float"],
        [list(r) for r in TINY_INTER],
    )
    write_atomic(
        tmp_path,
        "tiny",
        "item",
        ["item_id:token", "genre:token_seq", "year:float"],
        [
            ["i1", "a b", 1990],
            ["i2", "b", 1991],
            ["i3", "", ""],
            ["i4", "c a", 1993],
            ["i5", "a", 1994],
            ["i6", "b c", 1995],
            ["i7", "c", 1996],
        ],
    )
    return tmp_path


def tiny_config(data_path: Path, model: str = "Pop", **overrides) -> Config:
    """Config of model on 'tiny' with a TO 0.6/0.2/0.2 split by user, checkpoints under data_path."""
    values = {
        "data_path": str(data_path),
        "checkpoint_dir": str(data_path / "saved"),
        "load_col": {"inter": ["user_id", "item_id", "rating", "timestamp"]},
        "eval_args": {"split": {"RS": [0.6, 0.2, 0.2]}, "order": "TO", "group_by": "user", "mode": "full"},
        "show_progress": False,
        "topk": [1, 2, 3],
        "metrics": ["Recall", "MRR", "NDCG", "Hit", "Precision", "MAP"],
        "valid_metric": "Recall@3",
    }
    values.update(overrides)
    return Config(model, "tiny", config_dict=values)


def tiny_args(tiny_path, model="Pop"):
    """`recforge run` arguments for the tiny data set with the split of tiny_config."""
    return [
        "run",
        "--model",
        model,
        "--dataset",
        "tiny",
        "--data_path",
        str(tiny_path),
        "--checkpoint_dir",
        str(tiny_path / "saved"),
        "--show_progress=false",
        "--load_col",
        "{inter: [user_id, item_id, rating, timestamp]}",
        "--eval_args",
        "{split: {RS: [0.6, 0.2, 0.2]}, order: TO}",
        "--topk",
        "[1, 2, 3]",
        "--valid_metric",
        "Recall@3",
        "--quiet",
    ]


def entries(folder: Path) -> list[Path]:
    """The processed-data cache entries (folders with a meta.json) in ``folder``."""
    return [entry for entry in folder.iterdir() if (entry / "meta.json").is_file()] if folder.is_dir() else []
