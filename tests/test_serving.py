"""Using a trained model: load (without the data set), recommend, and scoring external rankings."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import recforge
from conftest import tiny_config, write_atomic
from recforge.cli import main
from recforge.errors import DataError
from recforge.evaluation.evaluator import Evaluator

TITLES = {"i1": "Toy Story", "i2": "GoldenEye", "i3": "Four Rooms", "i4": "Get Shorty", "i5": "Copycat"}


def train(tiny_path, model="BPR", **overrides):
    """A saved run of ``model`` on the tiny data (titles in its .item file); returns (run_dir, result)."""
    write_atomic(
        tiny_path,
        "tiny",
        "item",
        ["item_id:token", "movie_title:token_seq", "year:float"],
        [[item, title, 1990] for item, title in TITLES.items()] + [["i6", "", ""], ["i7", "Seven", 1996]],
    )
    values = dict(tiny_config(tiny_path, model, epochs=3, learning_rate=0.05, **overrides).final_config_dict)
    result = recforge.run(model, "tiny", config_dict=values, saved=True, verbose=False)
    return Path(result["run_dir"]), result


def own_test_ranking(checkpoint):
    """Each test user's top items in the run's own test evaluation (token -> list of item tokens)."""
    config, model, dataset, _, _, test = recforge.load_data_and_model(checkpoint)
    evaluator = Evaluator.from_config(config)
    ranking = {}
    with torch.no_grad():
        for interaction, history, pos_rows, pos_items in test:
            scores = model.full_sort_predict(interaction).view(len(interaction), -1).clone()
            top, _, _, valid = evaluator.rank(scores, history, pos_rows, pos_items)
            for user, items, ok in zip(interaction["user_id"].tolist(), top.tolist(), valid.tolist(), strict=True):
                tokens = dataset.field2id_token["item_id"]
                ranking[dataset.field2id_token["user_id"][user]] = [
                    tokens[i] for i, keep in zip(items, ok, strict=True) if keep
                ]
    return ranking, max(config["topk"])


@pytest.mark.parametrize("model", ["BPR", "LightGCN", "Pop", "ItemKNN", "NCL"])
def test_load_and_recommend_equal_the_runs_own_test_ranking(tiny_path, model, monkeypatch):
    run_dir, _ = train(tiny_path, model)
    best = run_dir / "checkpoints" / "best.pth"
    expected, k = own_test_ranking(best)
    shutil.move(tiny_path / "tiny", tiny_path / "moved")  # load must not need the data set

    def refuse(*args, **kwargs):
        raise AssertionError("the data set was read")

    monkeypatch.setattr("recforge.data.files.atomic.read_atomic", refuse)
    loaded = recforge.load(best)
    table = loaded.recommend(list(expected), k=k, exclude=("train", "valid"))
    got = {}
    for row in table.to_pylist():
        got.setdefault(row["user"], []).append(row["item"])
    assert got == expected
    assert [r["rank"] for r in table.to_pylist() if r["user"] == next(iter(expected))] == list(
        range(1, len(expected[next(iter(expected))]) + 1)
    )


def test_recommend_masks_seen_items_and_shows_titles(tiny_path):
    run_dir, _ = train(tiny_path)
    loaded = recforge.load(run_dir / "checkpoints" / "best.pth")
    rows = loaded.recommend(["u1"], k=2).to_pylist()  # u1 had i1-i5: only i6 is left, so one row, not two
    assert [(r["rank"], r["item"], r["title"]) for r in rows] == [(1, "i6", "")]
    assert loaded.recommend(["u1"], k=2).column_names == ["user", "rank", "item", "score", "title"]
    scores = loaded.scores(np.array([loaded.data.user_id("u1")]))[0]
    everything = loaded.recommend(["u1"], k=6, include_seen=True).to_pylist()
    assert [r["score"] for r in everything] == sorted(scores[1:].double().tolist(), reverse=True)
    assert {r["item"] for r in everything} == {f"i{n}" for n in range(1, 7)}
    assert {r["item"]: r["title"] for r in everything} == {**TITLES, "i6": ""}
    test_only = loaded.recommend(["u1"], k=6, exclude=("train",)).to_pylist()
    assert {r["item"] for r in test_only} == {r["item"] for r in everything} - set(loaded_items(loaded, "u1", "train"))


def loaded_items(loaded, user, split):
    history = loaded.data.histories[split]
    _, items = history.gather(torch.tensor([loaded.data.user_id(user)]))
    return [loaded.data.item_tokens[i] for i in items.tolist()]


def test_unknown_users_and_the_popularity_fallback(tiny_path):
    run_dir, _ = train(tiny_path)
    loaded = recforge.load(run_dir / "checkpoints" / "best.pth")
    with pytest.raises(
        DataError, match=r"user 'nobody' \(and 1 more\) is not in the data BPR was trained on .*--fallback popular"
    ):
        loaded.recommend(["nobody", "u1", "ghost"], k=2)
    table = loaded.recommend(["nobody", "u1"], k=2, fallback="popular")
    assert table.column_names == ["user", "rank", "item", "score", "source", "title"]
    rows = table.to_pylist()
    assert [(r["user"], r["source"]) for r in rows] == [("nobody", "popular")] * 2 + [("u1", "model")]
    counts = loaded.data.item_counts
    expected = np.argsort(-counts[1:], kind="stable")[:2] + 1
    assert [r["item"] for r in rows[:2]] == [loaded.data.item_tokens[i] for i in expected]
    assert [r["score"] for r in rows[:2]] == [float(counts[i]) for i in expected]  # training interactions
    assert rows[2]["score"] == loaded.recommend(["u1"], k=2).to_pylist()[0]["score"]
    assert "source" not in loaded.recommend(["u1"], k=2).column_names  # no fallback asked: every row is the model's


def test_the_guides_to_pandas(tiny_path):
    run_dir, _ = train(tiny_path)
    frame = recforge.load(run_dir / "checkpoints" / "best.pth").recommend(["u1", "u2"], k=2).to_pandas()
    assert list(frame.columns) == ["user", "rank", "item", "score", "title"]
    assert frame[["user", "rank", "item"]].values.tolist() == [["u1", 1, "i6"], ["u2", 1, "i5"]]


def test_a_checkpoint_without_its_run_folder_is_loaded_by_rebuilding_the_data(tiny_path, tmp_path, caplog):
    run_dir, _ = train(tiny_path)
    copy = tmp_path / "elsewhere" / "model.pth"
    copy.parent.mkdir()
    shutil.copy(run_dir / "checkpoints" / "best.pth", copy)
    caplog.set_level(logging.INFO, logger="recforge")
    rebuilt = recforge.load(copy).recommend(["u1", "u2"], k=2)
    assert "no serving.npz in its run folder; rebuilding the data set" in caplog.text
    assert (
        rebuilt.to_pylist()
        == recforge.load(run_dir / "checkpoints" / "best.pth").recommend(["u1", "u2"], k=2).to_pylist()
    )


def test_recommend_command(tiny_path, tmp_path, capsys):
    run_dir, _ = train(tiny_path)
    best = str(run_dir / "checkpoints" / "best.pth")
    assert main(["recommend", "--checkpoint", best, "--user", "u2", "--k", "2", "--quiet"]) == 0
    out = capsys.readouterr().out.splitlines()  # each user has one unseen item
    assert out[0].split() == ["user", "rank", "item", "score", "title"] and len(out) == 2
    assert out[1].split()[:3] == ["u2", "1", "i5"] and out[1].endswith("Copycat")
    assert main(["recommend", "--checkpoint", best, "--user", "u2", "--k", "3", "--include-seen", "--quiet"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 4
    users = tmp_path / "users.txt"
    users.write_text("u1\nu2\n\n")
    target = tmp_path / "out.csv"
    assert (
        main(
            [
                "recommend",
                "--checkpoint",
                best,
                "--users-file",
                str(users),
                "--k",
                "2",
                "--format",
                "csv",
                "-o",
                str(target),
                "--quiet",
            ]
        )
        == 0
    )
    lines = target.read_text().splitlines()
    assert lines[0] == "user,rank,item,score,title" and len(lines) == 3 and lines[1].startswith("u1,1,i6,")
    assert main(["recommend", "--checkpoint", best, "--user", "u2", "--k", "1", "--format", "json", "--quiet"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["user"] == "u2" and row["rank"] == 1
    assert main(["recommend", "--checkpoint", best, "--user", "zz", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("recforge: error: user 'zz' is not in the data") and "Traceback" not in err


def test_recommend_command_exclude_equals_the_python_exclude(tiny_path, capsys):
    run_dir, _ = train(tiny_path)
    best = run_dir / "checkpoints" / "best.pth"
    loaded = recforge.load(best)
    users = ["--user", "u1", "--user", "u3"]
    for exclude, python in [(["train", "valid"], ("train", "valid")), (["test"], ("test",)), (["none"], ())]:
        args = ["recommend", "--checkpoint", str(best), *users, "--k", "6", "--format", "json", "--quiet"]
        assert main([*args, "--exclude", *exclude]) == 0
        assert json.loads(capsys.readouterr().out) == loaded.recommend(["u1", "u3"], k=6, exclude=python).to_pylist()
    assert (
        loaded.recommend(["u1"], k=6, exclude=()).to_pylist()
        == loaded.recommend(["u1"], k=6, include_seen=True).to_pylist()
    )
    assert (
        loaded.recommend(["u1"], k=6, exclude="train").to_pylist()
        == loaded.recommend(["u1"], k=6, exclude=["train"]).to_pylist()
    )
    with pytest.raises(DataError, match=r"exclude names splits \(train, valid, test\), not 'tests'"):
        loaded.recommend(["u1"], exclude=("train", "tests"))
    assert main(["recommend", "--checkpoint", str(best), *users, "--exclude", "none", "train", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("recforge: error: --exclude none goes alone") and len(err.splitlines()) == 1


def test_recommend_command_marks_the_popularity_fallback(tiny_path, capsys):
    run_dir, _ = train(tiny_path)
    args = ["recommend", "--checkpoint", str(run_dir / "checkpoints" / "best.pth"), "--user", "nobody", "--user"]
    args += ["u2", "--k", "2", "--fallback", "popular", "--quiet"]
    assert main([*args, "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "user,rank,item,score,source,title"
    assert [line.split(",")[4] for line in lines[1:]] == ["popular", "popular", "model"]
    assert main([*args, "--format", "json"]) == 0
    assert [row["source"] for row in json.loads(capsys.readouterr().out)] == ["popular", "popular", "model"]
    assert main(args) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["user", "rank", "item", "score", "source", "title"]
    assert [row.split()[4] for row in table[1:]] == ["popular", "popular", "model"]


# -- scoring external rankings -------------------------------------------------------------------------------


def write_predictions(path, rows, header="user_id,item_id,rank"):
    path.write_text(header + "\n" + "".join(",".join(map(str, row)) + "\n" for row in rows), encoding="utf-8")
    return path


def test_a_models_own_ranking_scored_as_a_file_gives_its_test_result(tiny_path, tmp_path):
    run_dir, result = train(tiny_path)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    loaded = recforge.load(run_dir / "checkpoints" / "best.pth")
    users = [t for t in loaded.data.user_tokens[1:]]
    table = loaded.recommend(users, k=6, exclude=("train", "valid")).to_pylist()
    ranks = write_predictions(tmp_path / "ranks.csv", [(r["user"], r["item"], r["rank"]) for r in table])
    config = tiny_config(tiny_path, "Pop")
    assert recforge.evaluate_predictions(ranks, config) == pytest.approx(result["test_result"], abs=0)
    scores = tmp_path / "scores.tsv"
    scores.write_text("item\tuser\tscore\n" + "".join(f"{r['item']}\t{r['user']}\t{r['score']}\n" for r in table))
    assert recforge.evaluate_predictions(scores, config) == pytest.approx(result["test_result"], abs=0)
    assert metrics["test_result"] == pytest.approx(result["test_result"])


def test_masking_and_unlisted_items_in_an_external_ranking(tiny_path, tmp_path):
    """u1's test item is i5 (TO split 0.6/0.2/0.2 of i1..i5); i1-i3 are training items (masked), i4 valid."""
    config = tiny_config(tiny_path, "Pop", metrics=["Hit", "Recall"], topk=[1, 2], valid_metric="Recall@2")
    masked_first = write_predictions(tmp_path / "a.csv", [("u1", "i1", 1), ("u1", "i2", 2), ("u1", "i5", 3)])
    result = recforge.evaluate_predictions(masked_first, config)
    assert result["hit@1"] == 0.25  # 4 test users; only u1 is listed, its i1 and i2 are masked: i5 moves to rank 1
    absent = write_predictions(tmp_path / "b.csv", [("u1", "i6", 1)])  # i5 unlisted: never a hit, even as filler
    assert recforge.evaluate_predictions(absent, config)["hit@2"] == 0.0


@pytest.mark.parametrize(
    "text, message",
    [
        ("user_id,item_id\nu1,i1\n", r"line 1: the header must name .* rank .* or score .*; it has: user_id, item_id"),
        ("user_id,item_id,rank\nu1,i1,1\nu1,i2\n", r"line 3: expected 3 fields, found 2"),
        ("user_id,item_id,rank\nu1,i1,first\n", r"line 2: rank 'first' is not a rank \(1 = best\)"),
        ("user_id,item_id,rank\nu1,i1,0\n", r"line 2: rank '0' is not a rank"),
        ("user_id,item_id,score\nu1,i1,1\nu1,i9,2\n", r"line 3: item 'i9' is not a item of tiny"),
        ("user_id,item_id,score\nu1,i1,1\nu1,i1,2\n", r"line 3: user 'u1' lists item 'i1' twice \(first on line 2\)"),
        ("user_id,item_id,score\n", r"no predictions"),
    ],
)
def test_malformed_prediction_files_name_the_line(tiny_path, tmp_path, text, message):
    path = tmp_path / "p.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        recforge.evaluate_predictions(path, tiny_config(tiny_path, "Pop"))


def test_evaluate_predictions_command(tiny_path, tmp_path, capsys):
    path = write_predictions(tmp_path / "p.csv", [("u1", "i5", 1), ("u2", "i4", 1)])
    args = ["evaluate", "--predictions", str(path), "--dataset", "tiny", "--data_path", str(tiny_path)]
    args += ["--eval_args", "{split: {RS: [0.6, 0.2, 0.2]}, order: TO, group_by: user, mode: full}", "--quiet"]
    args += ["--topk", "[1, 2]", "--metrics", "[Hit]", "--valid_metric", "Hit@2"]
    args += ["--load_col", "{inter: [user_id, item_id, rating, timestamp]}"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "p.csv on tiny" in out and "test" in out and "hit@2" in out
    assert main([*args, "--split", "valid"]) == 0
    assert "valid" in capsys.readouterr().out
    bad = write_predictions(tmp_path / "bad.csv", [("u1", "nope", 1)])
    assert main(["evaluate", "--predictions", str(bad), *args[3:]]) == 2
    assert "bad.csv, line 2: item 'nope'" in capsys.readouterr().err


def test_a_prediction_file_read_by_columns_equals_it_read_line_by_line(tiny_path, tmp_path):
    from recforge.serving import predictions

    dataset = recforge.create_dataset(tiny_config(tiny_path, "Pop"))
    path = tmp_path / "p.tsv"
    path.write_text("user\titem\tscore\textra\n u1\ti2 \t 0.5\tx\n\nu2\ti1\t-3e2\ty\nu1\ti1\t7\tz\n")
    header = ["user", "item", "score", "extra"]
    columns = predictions._columns(path, header, dataset)
    by_columns = predictions._read_columns(path, header, "\t", columns, dataset)
    by_lines = predictions._read_lines(path, header, "\t", columns, dataset)
    assert by_columns is not None
    for fast, slow in zip(by_columns, by_lines, strict=True):
        assert np.array_equal(fast, slow) and fast.dtype == slow.dtype
    path.write_text("user\titem\tscore\n u1\ti2\t1_000\n")  # Python's float reads it, pyarrow does not
    columns = predictions._columns(path, header[:3], dataset)
    assert predictions._read_columns(path, header[:3], "\t", columns, dataset) is None
    assert predictions.read_predictions(path, dataset)[1].tolist() == [1000.0]
