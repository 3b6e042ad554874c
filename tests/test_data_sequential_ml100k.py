"""recforge's sequential examples of ml-100k are RecBole 1.2.1's, example for example: the users, targets, history
lengths and histories of train / valid / test, in the same order (the reference digest was written by
benchmarks/sequential_digest.py in RecBole's environment)."""

import json
import sys
from pathlib import Path

from conftest import ML100K, ROOT, needs_ml100k

REFERENCE = Path(__file__).parent / "data" / "sequential" / "ml-100k-recbole.json"


@needs_ml100k
def test_ml100k_examples_equal_recboles():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from sequential_digest import build, digest

    expected = json.loads(REFERENCE.read_text(encoding="utf-8"))["splits"]
    got = digest(build("recforge", str(ML100K.parent)))
    for split in ("train", "valid", "test"):
        assert got[split]["examples"] == expected[split]["examples"], split
        assert got[split]["first"] == expected[split]["first"] and got[split]["last"] == expected[split]["last"], split
        assert got[split]["sha256"] == expected[split]["sha256"], split
