"""Token -> id vocabularies with RecBole's conventions: id 0 is the padding token ``[PAD]`` and ids are given in
order of first appearance over the listed columns (the interaction file first, then feature files)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recforge.data.files.atomic import POOL

PAD = "[PAD]"


def unify(vocabularies: Sequence[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Merge per-file vocabularies into one.

    Returns ``(merged, mappings)`` where ``mappings[j][c]`` is the merged code of code ``c`` of file ``j``.
    """
    if len(vocabularies) == 1:
        return vocabularies[0], [np.arange(len(vocabularies[0]), dtype=np.int64)]
    encoded = pc.dictionary_encode(pa.array(np.concatenate(vocabularies), pa.string()), memory_pool=POOL)
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    merged = np.asarray(encoded.dictionary.to_pylist(), dtype=object)
    bounds = np.cumsum([0, *map(len, vocabularies)])
    return merged, [codes[bounds[j] : bounds[j + 1]] for j in range(len(vocabularies))]


def assign_ids(code_arrays: Sequence[np.ndarray], vocabulary: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Give ids 1..n to the codes in order of first appearance across ``code_arrays`` (in that order).

    Codes < 0 mean "missing" and become id 0. Returns the id arrays (int64, same shapes) and ``id2token``
    (object array, ``id2token[0] == "[PAD]"``).
    """
    lengths = [len(a) for a in code_arrays]
    flat = np.concatenate(code_arrays) if code_arrays else np.empty(0, np.int64)
    encoded = pc.dictionary_encode(pa.array(flat, pa.int64(), mask=flat < 0), memory_pool=POOL)
    ids = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64) + 1
    seen_codes = encoded.dictionary.to_numpy(zero_copy_only=False)
    id2token = np.empty(len(seen_codes) + 1, dtype=object)
    id2token[0] = PAD
    id2token[1:] = vocabulary[seen_codes]
    bounds = np.cumsum([0, *lengths])
    return [ids[bounds[j] : bounds[j + 1]] for j in range(len(code_arrays))], id2token
