"""Converting raw MovieLens files into atomic files; the bundled data set is that conversion."""

import filecmp

import pytest

from conftest import ML_LATEST_SMALL_RAW
from recforge.data.files.convert import convert_movielens
from recforge.data.files.location import BUNDLED_ROOT
from recforge.errors import DataError


@pytest.fixture
def movielens_raw(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,10,4.0,100\n1,20,3.5,90\n2,10,5.0,80\n")
    (raw / "movies.csv").write_text(
        'movieId,title,genres\n10,"Good, the Bad (1966)",Action|Western\n20,Untitled,(no genres listed)\n'
        "30,Later Film (2001) ,Drama|Sci-Fi\n"
    )
    (raw / "tags.csv").write_text("userId,movieId,tag,timestamp\n1,10,Classic,1\n2,10,classic ,2\n1,20,weird  one,3\n")
    (raw / "links.csv").write_text("movieId,imdbId,tmdbId\n10,0060196,429\n20,0000001,\n")
    (raw / "README.txt").write_text("LICENSE TEXT\n")
    return raw


def lines(path):
    return path.read_text().splitlines()


def test_convert_movielens(movielens_raw, tmp_path):
    out = convert_movielens(movielens_raw, tmp_path / "out", name="mini")
    assert lines(out / "mini.inter") == [
        "user_id:token\titem_id:token\trating:float\ttimestamp:float",
        "1\t10\t4.0\t100",
        "1\t20\t3.5\t90",
        "2\t10\t5.0\t80",
    ]
    assert lines(out / "mini.item")[1:] == [
        "10\tGood, the Bad\t1966\tAction Western\t0060196\t429",
        "20\tUntitled\t\t\t0000001\t",
        "30\tLater Film\t2001\tDrama Sci-Fi\t\t",
    ]
    assert lines(out / "mini.kg")[1:] == [
        "movie:10\tfilm.genre\tgenre:Action",
        "movie:10\tfilm.genre\tgenre:Western",
        "movie:10\tfilm.release_year\tyear:1966",
        "movie:10\tfilm.decade\tdecade:1960s",
        "movie:10\tfilm.tag\ttag:classic",
        "movie:20\tfilm.tag\ttag:weird one",
        "movie:30\tfilm.genre\tgenre:Drama",
        "movie:30\tfilm.genre\tgenre:Sci-Fi",
        "movie:30\tfilm.release_year\tyear:2001",
        "movie:30\tfilm.decade\tdecade:2000s",
    ]
    assert lines(out / "mini.link")[1:] == ["10\tmovie:10", "20\tmovie:20", "30\tmovie:30"]
    assert "LICENSE TEXT" in (out / "README.txt").read_text()
    with pytest.raises(DataError, match="already exists"):
        convert_movielens(movielens_raw, out, name="mini")


def test_convert_failure_leaves_nothing(movielens_raw, tmp_path):
    (movielens_raw / "links.csv").unlink()
    with pytest.raises(DataError, match="links.csv: file not found"):
        convert_movielens(movielens_raw, tmp_path / "out2")
    assert not (tmp_path / "out2").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out2")] == []


@pytest.mark.skipif(not (ML_LATEST_SMALL_RAW / "ratings.csv").is_file(), reason="raw ml-latest-small not in ../shared")
def test_bundled_data_is_the_conversion_of_the_raw_files(tmp_path):
    out = convert_movielens(ML_LATEST_SMALL_RAW, tmp_path / "ml-latest-small")
    bundled = BUNDLED_ROOT / "ml-latest-small"
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(p.name for p in bundled.iterdir() if not p.name.startswith("."))
    match, mismatch, errors = filecmp.cmpfiles(out, bundled, names, shallow=False)
    assert mismatch == [] and errors == []
