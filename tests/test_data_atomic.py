import numpy as np
import pytest

from recforge.data.columns import SeqColumn
from recforge.data.files.atomic import read_atomic, read_header
from recforge.errors import DataError


def write(tmp_path, text, name="x.inter"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_all_four_types(tmp_path):
    path = write(
        tmp_path,
        "id:token\ttags:token_seq\tscore:float\tvec:float_seq\na\tx y\t1.5\t1 2 3\nb\t\t\t\na\ty  z\t-2e3\t4\n",
    )
    table = read_atomic(path)
    assert table.types == {"id": "token", "tags": "token_seq", "score": "float", "vec": "float_seq"}
    ids = table.columns["id"]
    assert list(ids.vocabulary[ids.codes]) == ["a", "b", "a"]
    score = table.columns["score"]
    assert score[0] == 1.5 and np.isnan(score[1]) and score[2] == -2000.0
    tags = table.columns["tags"]
    assert tags.offsets.tolist() == [0, 2, 2, 4]  # the empty item of "y  z" is dropped
    assert list(tags.vocabulary[tags.values]) == ["x", "y", "y", "z"]
    vec = table.columns["vec"]
    assert vec.offsets.tolist() == [0, 3, 3, 4] and vec.values.tolist() == [1.0, 2.0, 3.0, 4.0]


def test_load_only_some_columns_and_exclude(tmp_path):
    path = write(tmp_path, "u:token\ti:token\tr:float\n1\t2\t3\n")
    assert list(read_atomic(path, columns=["u", "r"]).columns) == ["u", "r"]
    assert list(read_atomic(path, exclude=["r"]).columns) == ["u", "i"]
    with pytest.raises(
        DataError, match=r"column\(s\) 'rating' requested by load_col are not in the header; the file has: u, i, r"
    ):
        read_atomic(path, columns=["u", "rating"])


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("user_id\titem_id:token", r"line 1, column 1: header entry 'user_id' must look like name:type"),
        ("user_id:token\titem_id:int", r"line 1, column 2: unknown field type 'int' in 'item_id:int'"),
        ("u:token\tu:float", "column 'u' appears twice in the header"),
        ("", "the header is empty"),
    ],
)
def test_malformed_headers(tmp_path, header, message):
    path = write(tmp_path, header + "\n1\t2\n")
    with pytest.raises(DataError, match=message):
        read_header(path)


def test_non_numeric_float_names_file_line_and_column(tmp_path):
    path = write(tmp_path, "u:token\ti:token\tr:float\n1\t2\t3\n1\t3\tfour\n")
    with pytest.raises(DataError, match=rf"{path}, line 3, column 3 \(r:float\): 'four' is not a number"):
        read_atomic(path)


def test_non_numeric_float_seq(tmp_path):
    path = write(tmp_path, "u:token\tv:float_seq\n1\t1 2\n2\t3 x\n")
    with pytest.raises(DataError, match=rf"{path}, line 3 \(v:float_seq\): 'x' is not a number"):
        read_atomic(path)


def test_wrong_number_of_columns_names_the_line(tmp_path):
    path = write(tmp_path, "u:token\ti:token\tr:float\n1\t2\t3\n1\t2\n")
    with pytest.raises(DataError, match=rf"{path}, line 3: expected 3 columns separated by '\\t', found 2"):
        read_atomic(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_atomic(tmp_path / "nope.inter")


def test_other_separators(tmp_path):
    path = write(tmp_path, "u:token,t:token_seq\n1,a|b\n")
    table = read_atomic(path, field_separator=",", seq_separator="|")
    t = table.columns["t"]
    assert list(t.vocabulary[t.values]) == ["a", "b"]


def test_seq_column_take_and_padded():
    col = SeqColumn(np.array([0, 2, 2, 5]), np.array([1, 2, 3, 4, 5]))
    taken = col.take(np.array([2, 0]))
    assert taken.offsets.tolist() == [0, 3, 5] and taken.values.tolist() == [3, 4, 5, 1, 2]
    assert col.padded().tolist() == [[1, 2, 0], [0, 0, 0], [3, 4, 5]]
    assert col.padded(max_len=2).tolist() == [[1, 2], [0, 0], [3, 4]]


def test_floats_parsed_by_the_reader_equal_the_text_path(tmp_path, monkeypatch):
    """Float columns are parsed while reading; a file the reader cannot parse that way goes through the text
    path, and both give the same values (empty and blank fields missing, exponents, signs)."""
    import recforge.data.files.atomic as atomic

    def rows(values):
        return "u:token\tx:float\n" + "".join(f"u{i}\t{v}\n" for i, v in enumerate(values))

    reads = []
    original = atomic._read_columns
    monkeypatch.setattr(atomic, "_read_columns", lambda *a, **k: reads.append(a) or original(*a, **k))
    values = read_atomic(write(tmp_path, rows(["1.5", "", "-0.0", "2e3", "  ", " 7", "1e-310", "3"]))).columns["x"]
    expected = np.array([1.5, np.nan, -0.0, 2000.0, np.nan, 7.0, 1e-310, 3.0])
    assert np.array_equal(values, expected, equal_nan=True) and np.signbit(values[2])
    reads.clear()
    plain = read_atomic(write(tmp_path, rows(["1.5", "", "2e3"]), "b.inter")).columns["x"]
    assert np.array_equal(plain, [1.5, np.nan, 2000.0], equal_nan=True)
    assert len(reads) == 1  # parsed by the reader, not read a second time as text
    for bad in ("nan", "inf", "-inf"):
        path = write(tmp_path, rows(["1", bad]), "c.inter")
        with pytest.raises(DataError, match=rf"c.inter, line 3, column 2 \(x:float\): '{bad}' is not a finite number"):
            read_atomic(path)


def test_a_row_with_more_fields_than_the_header_keeps_the_first_ones(tmp_path, caplog):
    """RecBole ignores extra fields (its own fixture test.inter has such a row); recforge too, naming the line."""
    path = tmp_path / "extra.inter"
    path.write_text("u:token\ti:token\tr:float\nu1\ti1\t1\nu2\ti2\t2\t99\textra\nu3\ti3\t3\nu4\ti4\t4\t5\n")
    with caplog.at_level("WARNING", logger="recforge"):
        table = read_atomic(path)
    assert list(table.columns["r"]) == [1.0, 2.0, 3.0, 4.0]
    assert table.columns["i"].vocabulary[table.columns["i"].codes].tolist() == ["i1", "i2", "i3", "i4"]
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == [
        f"{path}, line 3: more fields than the header's 3; the extra ones are ignored (and 1 more such line(s))"
    ]
    path.write_text("u:token\ti:token\tr:float\nu1\ti1\n")  # fewer fields: an error naming the line
    with pytest.raises(DataError, match="line 2: expected 3 columns"):
        read_atomic(path)
