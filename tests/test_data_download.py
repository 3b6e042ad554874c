import http.server
import threading
import zipfile

import pytest

from recforge import Config, create_dataset
from recforge.data.files import location as registry
from recforge.errors import DataError


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    with zipfile.ZipFile(root / "ml-100k.zip", "w") as archive:
        archive.writestr(
            "ml-100k/ml-100k.inter",
            "user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t10\t4\t5\n2\t10\t3\t6\n2\t11\t5\t7\n",
        )
    (root / "broken.zip").write_bytes(b"not a zip")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_known_dataset_is_fetched_on_first_use(server, tmp_path, monkeypatch):
    monkeypatch.setenv("RECFORGE_NO_DOWNLOAD", "0")
    monkeypatch.setitem(registry.KNOWN["ml-100k"], "source", f"{server}/ml-100k.zip")
    data = tmp_path / "data"
    ds = create_dataset(Config("Pop", "ml-100k", config_dict={"data_path": str(data)}))
    assert ds.inter_num == 3 and (data / "ml-100k" / "ml-100k.inter").is_file()
    assert [p.name for p in data.iterdir()] == ["ml-100k"]  # no temporary folder left
    monkeypatch.setitem(registry.KNOWN["ml-100k"], "source", f"{server}/gone.zip")
    assert create_dataset(Config("Pop", "ml-100k", config_dict={"data_path": str(data)})).inter_num == 3


@pytest.mark.slow
@pytest.mark.parametrize(("path", "message"), [("gone.zip", "could not download"), ("broken.zip", "not a zip archive")])
def test_failed_download_leaves_nothing(server, tmp_path, monkeypatch, path, message):
    monkeypatch.setenv("RECFORGE_NO_DOWNLOAD", "0")
    monkeypatch.setitem(registry.KNOWN["ml-100k"], "source", f"{server}/{path}")
    data = tmp_path / "data"
    with pytest.raises(DataError, match=message + ".*cannot be bundled"):
        create_dataset(Config("Pop", "ml-100k", config_dict={"data_path": str(data)}))
    assert list(data.iterdir()) == []


def test_unknown_dataset_gets_a_suggestion(tmp_path):
    with pytest.raises(DataError, match=r"data set 'ml-latest-smal' not found \(did you mean 'ml-latest-small'\?\)"):
        create_dataset(Config("Pop", "ml-latest-smal", config_dict={"data_path": str(tmp_path)}))
