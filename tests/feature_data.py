"""A synthetic data set 'feat' with every field type in every file, for context-aware and tree models.

.inter: user_id, item_id, rating (float; threshold 3 gives the labels), hour (float), device (token),
moods (token_seq), signal (float_seq); .user: age (float), gender (token), hobbies (token_seq); .item: price
(float), genres (token_seq), vector (float_seq). Ratings depend on the user's gender, the item's first genre
and the hour, so models can learn them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from conftest import write_atomic
from recforge import Config

USERS = [f"u{i}" for i in range(30)]
ITEMS = [f"i{i}" for i in range(20)]
GENRES = ["action", "drama", "comedy"]
# Every field type in every file.
INTER_HEADER = [
    "user_id:token",
    "item_id:token",
    "rating:float",
    "hour:float",
    "device:token",
    "moods:token_seq",
    "signal:float_seq",
]
USER_HEADER = ["user_id:token", "age:float", "gender:token", "hobbies:token_seq"]
ITEM_HEADER = ["item_id:token", "price:float", "genres:token_seq", "vector:float_seq"]


def write_feature_data(root: Path, n_rows: int = 600, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    genders = {u: "F" if i % 2 else "M" for i, u in enumerate(USERS)}
    first_genre = {it: GENRES[i % 3] for i, it in enumerate(ITEMS)}
    rows = []
    for _ in range(n_rows):
        user, item = USERS[rng.integers(len(USERS))], ITEMS[rng.integers(len(ITEMS))]
        hour = int(rng.integers(24))
        likes = (genders[user] == "F") == (first_genre[item] == "drama")
        rating = 4 + int(rng.integers(2)) if likes ^ (hour < 3) else 1 + int(rng.integers(3))
        moods = " ".join(rng.choice(["calm", "busy", "tired"], size=int(rng.integers(0, 3)), replace=False))
        signal = " ".join(f"{v:.2f}" for v in rng.random(int(rng.integers(1, 4))))
        rows.append([user, item, rating, hour, rng.choice(["phone", "tv"]), moods, signal])
    write_atomic(
        root,
        "feat",
        "inter",
        INTER_HEADER,
        rows,
    )
    users = [[u, 20 + i, genders[u], " ".join(["chess", "golf", "yoga"][: i % 3 + 1])] for i, u in enumerate(USERS)]
    write_atomic(root, "feat", "user", USER_HEADER, users)
    items = [
        [it, 5 + i, " ".join([first_genre[it], GENRES[(i + 1) % 3]][: 1 + i % 2]), f"{i / 10:.1f} {1 - i / 10:.1f}"]
        for i, it in enumerate(ITEMS)
    ]
    write_atomic(root, "feat", "item", ITEM_HEADER, items)
    return root


def feature_config(root: Path, model: str, **overrides) -> Config:
    """``model`` on 'feat' with labels rating >= 3, labelled evaluation of a 70/15/15 random split."""
    values = {
        "data_path": str(root),
        "checkpoint_dir": str(root / "saved"),
        "load_col": None,
        "threshold": {"rating": 3},
        "eval_args": {"split": {"RS": [0.7, 0.15, 0.15]}, "order": "RO", "group_by": None, "mode": "labeled"},
        "show_progress": False,
        "data_cache": False,
        **overrides,
    }
    return Config(model, "feat", config_dict=values)
