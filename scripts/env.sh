# Source this file: it makes sure .venv exists and holds recforge with its test extras,
# then puts .venv/bin first on PATH. Safe to source again: it reinstalls only when
# pyproject.toml changed since the last install.
#
# torch is installed first, pinned to the CPU build this workplace keeps on disk
# (an unpinned torch would pull a multi-GB CUDA build). Override with RECFORGE_TORCH,
# e.g. RECFORGE_TORCH="torch==2.13.0+cu126 --index-url ..." on a GPU machine.
set -e
_rf_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_rf_venv="${RECFORGE_VENV:-$_rf_root/.venv}"
_rf_python="${PYTHON:-python3}"
_rf_torch="${RECFORGE_TORCH:-torch==2.13.0}"
_rf_stamp="$_rf_venv/.recforge-installed"
_rf_want="$( (cat "$_rf_root/pyproject.toml"; echo "$_rf_torch") | sha256sum | cut -c1-16)"

if [ ! -x "$_rf_venv/bin/python" ]; then
    echo "[recforge] creating virtual environment in $_rf_venv" >&2
    "$_rf_python" -m venv "$_rf_venv"
fi
if [ "$(cat "$_rf_stamp" 2>/dev/null)" != "$_rf_want" ]; then
    echo "[recforge] installing $_rf_torch, then recforge[test] (first run only)" >&2
    "$_rf_venv/bin/python" -m pip install --quiet --disable-pip-version-check $_rf_torch
    "$_rf_venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$_rf_root[test]"
    echo "$_rf_want" > "$_rf_stamp"
fi
export PATH="$_rf_venv/bin:$PATH"
set +e
