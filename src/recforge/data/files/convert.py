"""Convert raw MovieLens CSV files (ratings.csv, movies.csv, tags.csv, links.csv) into atomic files.

Output, in ``<out>/<name>.*``:

- ``.inter``  user_id:token  item_id:token  rating:float  timestamp:float   (one line per rating, file order)
- ``.item``   item_id:token  movie_title:token_seq  release_year:token  class:token_seq  imdb_id:token
  tmdb_id:token   (RecBole's ml-100k column names; class holds the genres)
- ``.kg``     head_id:token  relation_id:token  tail_id:token — a knowledge graph from the movies' own metadata:
  ``film.genre`` (movie -> genre:<name>), ``film.release_year`` (movie -> year:<yyyy>), ``film.decade``
  (movie -> decade:<yyyy>s) and ``film.tag`` (movie -> tag:<lower-cased user tag>)
- ``.link``   item_id:token  entity_id:token  (item -> its movie entity ``movie:<movieId>``)
- ``<name>.yaml`` config defaults for the data set, and ``README.txt`` (GroupLens's license and citation)

The conversion is deterministic and writes into a temporary folder that replaces ``<out>`` only when
complete, so a failure leaves nothing half-written.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv

from recforge.errors import DataError

_TITLE_YEAR = re.compile(r"^(?P<title>.*?)\s*\((?P<year>\d{4})(?:[-–]\d{0,4})?\)\s*$")
_SPACE = re.compile(r"\s+")

DEFAULTS_YAML = """\
# Config defaults for this data set (lowest-priority layer after the model's defaults).
load_col:
  inter: [user_id, item_id, rating, timestamp]
user_inter_num_interval: ~
item_inter_num_interval: ~
"""

NOTICE = """\
This folder holds the MovieLens "latest-small" data set (ml-latest-small, generated 2018-09-26 by GroupLens),
converted to RecBole atomic files by `recforge convert-movielens` (module recforge.data.files.convert). The ratings are
unchanged; the .item, .kg and .link files are derived from movies.csv, tags.csv and links.csv. The license and
citation of the original data, which apply to this converted copy as well, follow in README.txt.
"""


def _clean(text: str) -> str:
    return _SPACE.sub(" ", text.replace("\t", " ")).strip()


def _read(path: Path, types: dict[str, pa.DataType]) -> pa.Table:
    if not path.is_file():
        raise DataError(
            f"{path}: file not found (a MovieLens folder holds ratings.csv, movies.csv, tags.csv, links.csv)"
        )
    try:
        table = pa_csv.read_csv(path, convert_options=pa_csv.ConvertOptions(column_types=types))
    except pa.ArrowInvalid as exc:
        raise DataError(f"{path}: cannot be parsed as a MovieLens CSV file ({exc})") from None
    missing = [name for name in types if name not in table.column_names]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; found {table.column_names}")
    return table


def convert_movielens(
    source: str | Path, out: str | Path, name: str = "ml-latest-small", overwrite: bool = False
) -> Path:
    """Convert the MovieLens CSV folder ``source`` into the atomic-file folder ``out``; returns ``out``."""
    source, out = Path(source), Path(out)
    if out.exists() and not overwrite:
        raise DataError(f"{out} already exists; pass overwrite=True (--overwrite) to replace it")
    ratings = _read(
        source / "ratings.csv",
        {"userId": pa.string(), "movieId": pa.string(), "rating": pa.string(), "timestamp": pa.string()},
    )
    movies = _read(source / "movies.csv", {"movieId": pa.string(), "title": pa.string(), "genres": pa.string()})
    tags = _read(
        source / "tags.csv",
        {"userId": pa.string(), "movieId": pa.string(), "tag": pa.string(), "timestamp": pa.string()},
    )
    links = _read(source / "links.csv", {"movieId": pa.string(), "imdbId": pa.string(), "tmdbId": pa.string()})

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    staging.chmod(0o755)
    try:
        _write_inter(staging / f"{name}.inter", ratings)
        movie_rows = _movie_rows(movies, links)
        _write_item(staging / f"{name}.item", movie_rows)
        _write_kg(staging / f"{name}.kg", staging / f"{name}.link", movie_rows, tags)
        (staging / f"{name}.yaml").write_text(DEFAULTS_YAML, encoding="utf-8")
        readme = source / "README.txt"
        license_text = readme.read_text(encoding="utf-8") if readme.is_file() else ""
        (staging / "README.txt").write_text(NOTICE + "\n" + license_text, encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def _write_inter(path: Path, ratings: pa.Table) -> None:
    columns = [ratings.column(c).to_pylist() for c in ("userId", "movieId", "rating", "timestamp")]
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write("user_id:token\titem_id:token\trating:float\ttimestamp:float\n")
        handle.writelines(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in zip(*columns, strict=True))


def _movie_rows(movies: pa.Table, links: pa.Table) -> list[dict[str, object]]:
    link = {
        m: (imdb or "", tmdb or "")
        for m, imdb, tmdb in zip(
            links.column("movieId").to_pylist(),
            links.column("imdbId").to_pylist(),
            links.column("tmdbId").to_pylist(),
            strict=True,
        )
    }
    rows = []
    for movie_id, raw_title, raw_genres in zip(
        movies.column("movieId").to_pylist(),
        movies.column("title").to_pylist(),
        movies.column("genres").to_pylist(),
        strict=True,
    ):
        title = _clean(raw_title or "")
        match = _TITLE_YEAR.match(title)
        year = match.group("year") if match else ""
        if match:
            title = match.group("title")
        genres = [g for g in (raw_genres or "").split("|") if g and g != "(no genres listed)"]
        imdb, tmdb = link.get(movie_id, ("", ""))
        rows.append(
            {
                "id": movie_id,
                "title": title,
                "year": year,
                "genres": [_clean(g).replace(" ", "_") for g in genres],
                "imdb": imdb,
                "tmdb": tmdb,
            }
        )
    return rows


def _write_item(path: Path, rows: list[dict[str, object]]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(
            "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\timdb_id:token\ttmdb_id:token\n"
        )
        for row in rows:
            handle.write(
                f"{row['id']}\t{row['title']}\t{row['year']}\t{' '.join(row['genres'])}\t{row['imdb']}\t{row['tmdb']}\n"
            )


def _write_kg(kg_path: Path, link_path: Path, rows: list[dict[str, object]], tags: pa.Table) -> None:
    tags_of: dict[str, list[str]] = {}
    for movie_id, tag in zip(tags.column("movieId").to_pylist(), tags.column("tag").to_pylist(), strict=True):
        tag = _clean(tag or "").lower()
        if tag and tag not in tags_of.setdefault(movie_id, []):
            tags_of[movie_id].append(tag)
    with (
        open(kg_path, "w", encoding="utf-8", newline="\n") as kg,
        open(link_path, "w", encoding="utf-8", newline="\n") as link,
    ):
        kg.write("head_id:token\trelation_id:token\ttail_id:token\n")
        link.write("item_id:token\tentity_id:token\n")
        for row in rows:
            entity = f"movie:{row['id']}"
            link.write(f"{row['id']}\t{entity}\n")
            for genre in row["genres"]:
                kg.write(f"{entity}\tfilm.genre\tgenre:{genre}\n")
            if row["year"]:
                kg.write(f"{entity}\tfilm.release_year\tyear:{row['year']}\n")
                kg.write(f"{entity}\tfilm.decade\tdecade:{str(row['year'])[:3]}0s\n")
            for tag in tags_of.get(str(row["id"]), []):
                kg.write(f"{entity}\tfilm.tag\ttag:{tag}\n")
