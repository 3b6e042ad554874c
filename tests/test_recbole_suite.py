"""RecBole 1.2.1's own tests pass against recforge with only their import lines rewritten (scripts/recbole_suite.py):
data, metrics, evaluation settings, config, and the model tests of every model recforge implements."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
from recbole_suite import DEFAULT_SOURCE, DIFFERENCES, model_tests, rewrite_imports

needs_suite = pytest.mark.skipif(
    not (DEFAULT_SOURCE / "model" / "test_model_auto.py").is_file(), reason=f"RecBole's tests not in {DEFAULT_SOURCE}"
)


def test_only_import_lines_are_rewritten():
    text = (
        "import os\nfrom recbole.config import Config\nimport recbole.data\n    from recbole.utils import x\n"
        'path = "recbole/properties"  # recbole stays recbole here\nfrom recboles import y\n'
    )
    assert rewrite_imports(text) == (
        "import os\nfrom recforge.config import Config\nimport recforge.data\n    from recforge.utils import x\n"
        'path = "recbole/properties"  # recbole stays recbole here\nfrom recboles import y\n'
    )


@needs_suite
def test_model_tests_are_found_by_their_model():
    found = dict(
        (node.split("::")[-1], model) for node, model in model_tests(DEFAULT_SOURCE / "model" / "test_model_auto.py")
    )
    assert found["test_bpr"] == "BPR" and found["test_userknn"] == "ItemKNN" and found["test_sasrec"] == "SASRec"
    assert len(found) > 90


@pytest.mark.slow
@needs_suite
def test_recboles_own_suite_passes(tmp_path):
    """Every selected test passes; the deliberate differences are few and each names its row of
    docs/architecture.md."""
    assert len(DIFFERENCES) <= 10
    architecture = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    for row in set(DIFFERENCES.values()):
        assert row.split(":")[0] in architecture, row
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "recbole_suite.py"), "--keep", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    summary = re.search(r"(\d+) passed", done.stdout)
    assert summary is not None and int(summary.group(1)) >= 120, done.stdout[-2000:]
    assert " failed" not in done.stdout.splitlines()[-1]
