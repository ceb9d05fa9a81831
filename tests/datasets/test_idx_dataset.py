import gzip
import hashlib
import http.server
import threading

import numpy as np
import pytest
from kedro.io import DatasetError

from fashion_transfer.datasets import IDXDataset
from fashion_transfer.datasets import idx_dataset as idx_module
from tests.conftest import idx_bytes, write_idx

IMAGES = np.arange(3 * 28 * 28, dtype=np.uint64).reshape(3, 28, 28).astype(np.uint8)
LABELS = np.array([0, 9, 4], dtype=np.uint8)


@pytest.fixture(autouse=True)
def no_env_source(monkeypatch):
    monkeypatch.delenv(idx_module.SOURCE_ENV_VAR, raising=False)


@pytest.mark.parametrize("compress", [True, False])
def test_loads_gzip_and_plain_files(tmp_path, compress):
    images = write_idx(tmp_path / "train-images-idx3-ubyte.gz", IMAGES, "images", compress)
    labels = write_idx(tmp_path / "train-labels-idx1-ubyte.gz", LABELS, "labels", compress)
    np.testing.assert_array_equal(IDXDataset(filepath=str(images), kind="images").load(), IMAGES)
    np.testing.assert_array_equal(IDXDataset(filepath=str(labels), kind="labels").load(), LABELS)


def test_fetches_once_from_env_folder_into_filepath(tmp_path, monkeypatch):
    source = tmp_path / "source"
    source.mkdir()
    write_idx(source / "t10k-labels-idx1-ubyte.gz", LABELS, "labels")
    monkeypatch.setenv(idx_module.SOURCE_ENV_VAR, str(source))
    target = tmp_path / "raw" / "t10k-labels-idx1-ubyte.gz"
    dataset = IDXDataset(filepath=str(target), kind="labels")

    np.testing.assert_array_equal(dataset.load(), LABELS)
    assert target.read_bytes() == (source / target.name).read_bytes()
    (source / target.name).unlink()  # the copy in raw/ is reused from now on
    np.testing.assert_array_equal(dataset.load(), LABELS)
    assert [p.name for p in target.parent.iterdir()] == [target.name]


def test_plain_file_in_source_folder_is_accepted(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    write_idx(source / "train-labels-idx1-ubyte", LABELS, "labels", compress=False)
    target = tmp_path / "raw" / "train-labels-idx1-ubyte.gz"
    loaded = IDXDataset(filepath=str(target), kind="labels", source=str(source)).load()
    np.testing.assert_array_equal(loaded, LABELS)


def _error(dataset) -> str:
    with pytest.raises(DatasetError) as info:
        dataset.load()
    return str(info.value)


def test_missing_file_in_source_names_the_files_and_the_fix(tmp_path):
    message = _error(
        IDXDataset(
            filepath=str(tmp_path / "raw" / "train-images-idx3-ubyte.gz"),
            kind="images",
            source=str(tmp_path),
        )
    )
    assert "train-images-idx3-ubyte.gz is not in the local source folder" in message
    assert "t10k-labels-idx1-ubyte.gz" in message
    assert not any((tmp_path / "raw").iterdir())


@pytest.mark.parametrize(
    ("raw", "kind", "expected"),
    [
        (idx_bytes(LABELS, "labels"), "images", "magic number 0x00000801"),
        (idx_bytes(np.zeros((2, 32, 32), np.uint8), "images"), "images", "32x32 pixels"),
        (idx_bytes(IMAGES, "images")[:-10], "images", "truncated"),
        (b"\x00\x00", "labels", "too short"),
        (gzip.compress(idx_bytes(LABELS, "labels"))[:-8], "labels", "not a valid gzip file"),
    ],
    ids=["wrong-magic", "wrong-size", "truncated", "empty", "corrupt-gzip"],
)
def test_invalid_files_get_clear_errors(tmp_path, raw, kind, expected):
    path = tmp_path / "file.gz"
    path.write_bytes(raw)
    message = _error(IDXDataset(filepath=str(path), kind=kind))
    assert expected in message
    assert str(path) in message


def test_invalid_source_file_never_reaches_filepath(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    (source / "train-labels-idx1-ubyte.gz").write_bytes(idx_bytes(LABELS, "labels")[:-1])
    target = tmp_path / "raw" / "train-labels-idx1-ubyte.gz"
    assert "truncated" in _error(
        IDXDataset(filepath=str(target), kind="labels", source=str(source))
    )
    assert list(target.parent.iterdir()) == []


def test_folder_in_place_of_file(tmp_path):
    (tmp_path / "train-labels-idx1-ubyte.gz").mkdir()
    message = _error(
        IDXDataset(filepath=str(tmp_path / "train-labels-idx1-ubyte.gz"), kind="labels")
    )
    assert "is a folder" in message


def test_unreachable_mirror_says_how_to_work_offline(tmp_path):
    dataset = IDXDataset(
        filepath=str(tmp_path / "train-labels-idx1-ubyte.gz"),
        kind="labels",
        source="http://127.0.0.1:9/",
        timeout=5,
    )
    message = _error(dataset)
    assert "Could not download http://127.0.0.1:9/train-labels-idx1-ubyte.gz" in message
    assert idx_module.SOURCE_ENV_VAR in message
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def http_folder(tmp_path):
    """Serve tmp_path/www on 127.0.0.1 for the length of one test."""
    www = tmp_path / "www"
    www.mkdir()
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(www), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    handler_class = server.RequestHandlerClass
    handler_class.log_message = lambda *args: None
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_download_from_official_mirror_checks_md5(tmp_path, http_folder, monkeypatch):
    www, url = http_folder
    payload = gzip.compress(idx_bytes(LABELS, "labels"))
    (www / "train-labels-idx1-ubyte.gz").write_bytes(payload)
    monkeypatch.setattr(idx_module, "OFFICIAL_MIRROR", url)
    raw = tmp_path / "raw"

    good = IDXDataset(
        filepath=str(raw / "train-labels-idx1-ubyte.gz"),
        kind="labels",
        md5=hashlib.md5(payload).hexdigest(),
    )
    np.testing.assert_array_equal(good.load(), LABELS)

    (raw / "train-labels-idx1-ubyte.gz").unlink()
    bad = IDXDataset(filepath=str(raw / "train-labels-idx1-ubyte.gz"), kind="labels", md5="0" * 32)
    message = _error(bad)
    assert "expected MD5 " + "0" * 32 in message
    assert hashlib.md5(payload).hexdigest() in message
    assert list(raw.iterdir()) == []


def test_interrupted_download_leaves_no_partial_file(tmp_path, monkeypatch):
    class BrokenResponse:
        headers = {"Content-Length": "9912422"}

        def __init__(self):
            self.chunks = [b"\x1f\x8b partial"]

        def read(self, size):
            if self.chunks:
                return self.chunks.pop()
            raise ConnectionResetError("connection reset by peer")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(idx_module.urllib.request, "urlopen", lambda *a, **k: BrokenResponse())
    raw = tmp_path / "raw"
    dataset = IDXDataset(
        filepath=str(raw / "t10k-images-idx3-ubyte.gz"),
        kind="images",
        source="http://mirror.invalid/",
    )
    assert "connection reset" in _error(dataset)
    assert list(raw.iterdir()) == []


def test_dataset_is_read_only(tmp_path):
    with pytest.raises(DatasetError, match="does not write it"):
        IDXDataset(filepath=str(tmp_path / "x.gz"), kind="labels").save(LABELS)
