"""Tests for pckernels.data: IDX files, dataset lookup, downloads, digits, .npz, splitting."""
import gzip
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import pckernels.data as data
from pckernels.data import (DATASETS, IDX_FILES, DataError, Dataset, load_dataset, read_idx,
                            train_val_split, validate_arrays, write_idx)

try:  # tests/ is a plain directory on sys.path, or a package if someone adds __init__.py
    from idx_server import FileServer, make_idx_dataset, md5_of
except ImportError:
    from tests.idx_server import FileServer, make_idx_dataset, md5_of


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """Point every lookup location into tmp_path and clear the environment knobs."""
    system = tmp_path / "system"
    cache = tmp_path / "cache"
    monkeypatch.setattr(data, "SYSTEM_DATA_DIR", str(system))
    monkeypatch.setattr(data, "CACHE_DIR", str(cache))
    monkeypatch.setattr(data, "DOWNLOAD_TIMEOUT", 5.0)
    for var in ("PCK_DATA_DIR", "PCK_DATASET_MIRROR", "PCK_DATASET_NO_CHECKSUM",
                "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    return {"system": system, "cache": cache, "tmp": tmp_path}


def assert_dataset_matches(ds, arrays):
    """``ds`` holds ``arrays`` (as written by make_idx_dataset), scaled and flattened."""
    for X, y, split in ((ds.X_train, ds.y_train, "train"), (ds.X_test, ds.y_test, "t10k")):
        images = arrays[f"{split}-images-idx3-ubyte"]
        assert X.dtype == np.float64 and X.flags["C_CONTIGUOUS"]
        assert y.dtype == np.int64
        np.testing.assert_array_equal(X, images.reshape(len(images), -1) / 255.0)
        np.testing.assert_array_equal(y, arrays[f"{split}-labels-idx1-ubyte"])
    assert ds.n_classes == 10
    assert ds.n_features == 784


# ----------------------------------------------------------------------------- IDX

@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32,
                                   np.float64])
@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 3, 4), (0, 4)])
def test_idx_roundtrip(tmp_path, dtype, shape, compress):
    rng = np.random.default_rng(1)
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    if info is None:
        array = rng.standard_normal(shape).astype(dtype)
    else:
        array = rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)
    path = tmp_path / "a.idx"
    write_idx(path, array, compress=compress)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == compress
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    assert back.shape == shape
    np.testing.assert_array_equal(back, array)


def test_idx_header_is_big_endian_standard(tmp_path):
    path = tmp_path / "labels"
    write_idx(path, np.array([1, 2, 3], dtype=np.int32))
    raw = path.read_bytes()
    assert raw[:8] == bytes([0, 0, 0x0C, 1, 0, 0, 0, 3])
    assert raw[8:] == bytes([0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3])


def test_read_idx_detects_gzip_by_magic_not_by_name(tmp_path):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    write_idx(tmp_path / "compressed.idx", array, compress=True)
    write_idx(tmp_path / "plain.gz", array, compress=False)
    np.testing.assert_array_equal(read_idx(tmp_path / "compressed.idx"), array)
    np.testing.assert_array_equal(read_idx(tmp_path / "plain.gz"), array)


@pytest.mark.parametrize("array", [np.zeros(3, dtype=np.int64), np.zeros(3, dtype=bool),
                                   np.array(5, dtype=np.uint8)])
def test_write_idx_rejects_what_idx_cannot_hold(tmp_path, array):
    with pytest.raises(DataError, match="IDX"):
        write_idx(tmp_path / "x", array)


def _idx_bytes(tmp_path, array):
    write_idx(tmp_path / "src", array)
    return (tmp_path / "src").read_bytes()


@pytest.mark.parametrize("mutate, message", [
    (lambda b: b"\x08\x03" + b[2:], "not an IDX file"),
    (lambda b: b[:2] + b"\x07" + b[3:], "unknown IDX type code 0x07"),
    (lambda b: b[:-5], "truncated: payload is 19 bytes .* need 24"),
    (lambda b: b + b"\x00\x00", "too long: payload is 26 bytes"),
    (lambda b: b[:9], "truncated IDX header"),
    (lambda b: b"", "not an IDX file"),
    (lambda b: b[:3] + b"\x00" + b[4:], "0 dimensions"),
])
@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_rejects_corrupt_files(tmp_path, mutate, message, compress):
    good = _idx_bytes(tmp_path, np.zeros((2, 3, 4), dtype=np.uint8))
    bad = mutate(good)
    path = tmp_path / "broken-idx3-ubyte"
    path.write_bytes(gzip.compress(bad) if compress else bad)
    with pytest.raises(DataError, match=message) as info:
        read_idx(path)
    text = str(info.value)
    assert str(path) in text and "\n" not in text


def test_read_idx_rejects_truncated_gzip(tmp_path):
    path = tmp_path / "cut.gz"
    write_idx(path, np.arange(1000, dtype=np.int32), compress=True)
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(DataError, match="corrupt gzip data"):
        read_idx(path)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_idx(tmp_path / "nope")


def test_read_real_fashion_mnist_labels_if_installed():
    path = Path("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz")
    if not path.is_file():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    labels = read_idx(path)
    assert labels.shape == (10000,) and labels.dtype == np.uint8
    assert np.array_equal(np.bincount(labels), np.full(10, 1000))


# ----------------------------------------------------------------------------- IDX datasets

def test_load_idx_dataset_contents(isolated):
    arrays = make_idx_dataset(isolated["tmp"] / "d", n_train=20, n_test=10)
    ds = load_dataset("mnist", data_dir=isolated["tmp"] / "d", download=False)
    assert isinstance(ds, Dataset) and ds.name == "mnist"
    assert ds.X_train.shape == (20, 784) and ds.X_test.shape == (10, 784)
    assert ds.source == str(isolated["tmp"] / "d")
    assert_dataset_matches(ds, arrays)
    assert 0.0 <= ds.X_train.min() and ds.X_train.max() <= 1.0
    assert "n_train=20" in repr(ds)


def test_load_idx_dataset_raw_files(isolated):
    arrays = make_idx_dataset(isolated["tmp"] / "d", compress=False)
    ds = load_dataset("fashion-mnist", data_dir=isolated["tmp"] / "d", download=False)
    assert_dataset_matches(ds, arrays)


def test_lookup_order(isolated, monkeypatch):
    tmp = isolated["tmp"]
    # Distinct train sizes tell the sources apart.
    make_idx_dataset(tmp / "arg", n_train=11)
    make_idx_dataset(tmp / "env" / "mnist", n_train=12)
    make_idx_dataset(isolated["system"] / "mnist", n_train=13)
    make_idx_dataset(isolated["cache"] / "mnist", n_train=14)
    monkeypatch.setenv("PCK_DATA_DIR", str(tmp / "env"))

    def n_train(**kwargs):
        return len(load_dataset("mnist", download=False, **kwargs).y_train)

    assert n_train(data_dir=tmp / "arg") == 11
    assert n_train() == 12
    monkeypatch.delenv("PCK_DATA_DIR")
    assert n_train() == 13
    monkeypatch.setattr(data, "SYSTEM_DATA_DIR", str(tmp / "elsewhere"))
    assert n_train() == 14


def test_named_subdirectory_beats_files_directly_in_data_dir(isolated):
    base = isolated["tmp"] / "data"
    make_idx_dataset(base, n_train=15)
    make_idx_dataset(base / "fashion-mnist", n_train=16)
    assert len(load_dataset("fashion-mnist", data_dir=base).y_train) == 16
    assert len(load_dataset("mnist", data_dir=base).y_train) == 15


def test_cache_defaults_to_xdg_cache_home(isolated, monkeypatch):
    monkeypatch.setattr(data, "CACHE_DIR", None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(isolated["tmp"] / "xdg"))
    make_idx_dataset(isolated["tmp"] / "xdg" / "pckernels" / "mnist", n_train=17)
    assert len(load_dataset("mnist", download=False).y_train) == 17


def test_missing_everywhere_says_where_it_looked(isolated, monkeypatch):
    monkeypatch.setenv("PCK_DATA_DIR", str(isolated["tmp"] / "env"))
    make_idx_dataset(isolated["cache"] / "mnist")
    (isolated["cache"] / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError) as info:
        load_dataset("mnist", download=False)
    text = str(info.value)
    for where in (isolated["tmp"] / "env" / "mnist", isolated["system"] / "mnist",
                  isolated["cache"] / "mnist"):
        assert str(where) in text
    assert "lacks t10k-labels-idx1-ubyte" in text
    assert "--data-dir" in text and "\n" not in text


def test_nonexistent_data_dir_is_an_error(isolated):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset("mnist", data_dir=isolated["tmp"] / "typo")


def test_image_label_count_mismatch(isolated):
    d = isolated["tmp"] / "d"
    make_idx_dataset(d, n_train=20)
    write_idx(d / "train-labels-idx1-ubyte.gz", np.zeros(19, dtype=np.uint8), compress=True)
    with pytest.raises(DataError, match="19 labels for 20 images"):
        load_dataset("mnist", data_dir=d)


def test_swapped_files_are_rejected(isolated):
    d = isolated["tmp"] / "d"
    arrays = make_idx_dataset(d)
    write_idx(d / "t10k-labels-idx1-ubyte.gz", arrays["t10k-images-idx3-ubyte"], compress=True)
    with pytest.raises(DataError, match="t10k-labels.*expected uint8 labels"):
        load_dataset("mnist", data_dir=d)


def test_idx_labels_out_of_range(isolated):
    d = isolated["tmp"] / "d"
    make_idx_dataset(d, n_test=10)
    write_idx(d / "t10k-labels-idx1-ubyte.gz", np.full(10, 10, dtype=np.uint8), compress=True)
    with pytest.raises(DataError, match="t10k-labels.*label 10 out of range for 10 classes"):
        load_dataset("mnist", data_dir=d)


def test_corrupt_idx_file_in_dataset_names_it(isolated):
    d = isolated["tmp"] / "d"
    make_idx_dataset(d)
    path = d / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-1]))
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz: truncated"):
        load_dataset("mnist", data_dir=d)


def test_unknown_name_lists_valid_names(isolated):
    with pytest.raises(DataError) as info:
        load_dataset("cifar10")
    assert all(name in str(info.value) for name in DATASETS)


# ----------------------------------------------------------------------------- download

@pytest.fixture
def mirror(isolated, monkeypatch):
    """A local server holding a small mnist under /good/, with matching checksums."""
    files_dir = isolated["tmp"] / "served"
    arrays = make_idx_dataset(files_dir, n_train=20, n_test=10, seed=3)
    sums = {f"{stem}.gz": md5_of(files_dir / f"{stem}.gz") for stem in IDX_FILES}
    monkeypatch.setitem(data.MD5SUMS, "mnist", sums)
    with FileServer() as server:
        server.serve_directory(files_dir, "good")
        monkeypatch.setitem(data.MIRRORS, "mnist",
                            (f"{server.url}/missing/", f"{server.url}/good/"))
        yield server, arrays, sums


def _cache_listing(isolated):
    folder = isolated["cache"] / "mnist"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_falls_through_404_and_verifies(isolated, mirror):
    server, arrays, sums = mirror
    ds = load_dataset("mnist", progress=False)
    assert_dataset_matches(ds, arrays)
    assert ds.source == str(isolated["cache"] / "mnist")
    assert _cache_listing(isolated) == sorted(f"{stem}.gz" for stem in IDX_FILES)
    for name, digest in sums.items():
        assert md5_of(isolated["cache"] / "mnist" / name) == digest
    first = "/missing/train-images-idx3-ubyte.gz"
    assert server.requests[:2] == [first, first.replace("missing", "good")]
    # A second load is served from the cache.
    count = len(server.requests)
    load_dataset("mnist")
    assert len(server.requests) == count


def test_download_only_fetches_missing_files(isolated, mirror):
    server, arrays, _ = mirror
    make_idx_dataset(isolated["cache"] / "mnist", n_train=20, n_test=10, seed=3)
    (isolated["cache"] / "mnist" / "t10k-images-idx3-ubyte.gz").unlink()
    assert_dataset_matches(load_dataset("mnist"), arrays)
    assert all("t10k-images" in path for path in server.requests)


def test_env_mirror_is_tried_first(isolated, mirror, monkeypatch):
    server, arrays, _ = mirror
    server.serve_directory(isolated["tmp"] / "served", "env")
    monkeypatch.setenv("PCK_DATASET_MIRROR", f"{server.url}/env")  # no trailing slash
    assert_dataset_matches(load_dataset("mnist"), arrays)
    assert server.requests and all(path.startswith("/env/") for path in server.requests)


def test_wrong_checksum_leaves_no_file(isolated, mirror, monkeypatch):
    server, _, sums = mirror
    monkeypatch.setitem(data.MD5SUMS, "mnist",
                        {**sums, "train-labels-idx1-ubyte.gz": "0" * 32})
    with pytest.raises(DataError) as info:
        load_dataset("mnist")
    text = str(info.value)
    assert text.startswith("could not download mnist")
    assert "train-labels-idx1-ubyte.gz: checksum mismatch" in text and "\n" not in text
    # The file verified before the bad one stays; nothing else, no temporaries.
    assert _cache_listing(isolated) == ["train-images-idx3-ubyte.gz"]


def test_no_checksum_switch(isolated, mirror, monkeypatch):
    _, arrays, sums = mirror
    monkeypatch.setitem(data.MD5SUMS, "mnist", {name: "0" * 32 for name in sums})
    monkeypatch.setenv("PCK_DATASET_NO_CHECKSUM", "1")
    assert_dataset_matches(load_dataset("mnist"), arrays)


def test_every_mirror_failing_gives_one_clear_error(isolated, mirror, monkeypatch):
    server, _, _ = mirror
    monkeypatch.setitem(data.MIRRORS, "mnist",
                        (f"{server.url}/missing/", "http://127.0.0.1:1/"))
    with pytest.raises(DataError) as info:
        load_dataset("mnist")
    text = str(info.value)
    assert text.startswith("could not download mnist file train-images-idx3-ubyte.gz "
                           "(missing from ")
    assert "HTTP 404" in text and "127.0.0.1:1/" in text
    assert text.endswith("put the IDX files in --data-dir or $PCK_DATA_DIR")
    assert _cache_listing(isolated) == []


def test_truncated_transfer_is_rejected(isolated, mirror, monkeypatch):
    server, _, _ = mirror
    server.truncate["/good/train-images-idx3-ubyte.gz"] = 100
    monkeypatch.setenv("PCK_DATASET_NO_CHECKSUM", "1")  # the length check alone must catch it
    with pytest.raises(DataError, match="connection closed after 100 of"):
        load_dataset("mnist")
    assert _cache_listing(isolated) == []


def test_download_disabled(isolated, mirror):
    server, _, _ = mirror
    with pytest.raises(DataError, match="IDX files not found"):
        load_dataset("mnist", download=False)
    assert server.requests == []


def test_download_progress_bar(isolated, mirror, capsys):
    load_dataset("mnist", progress=True)
    assert "downloading train-images-idx3-ubyte.gz" in capsys.readouterr().err


# ----------------------------------------------------------------------------- digits

def test_digits():
    ds = load_dataset("digits")
    assert ds.name == "digits" and ds.n_classes == 10 and ds.n_features == 64
    assert ds.X_train.shape == (1347, 64) and ds.X_test.shape == (450, 64)
    for X, y in ((ds.X_train, ds.y_train), (ds.X_test, ds.y_test)):
        assert X.dtype == np.float64 and X.flags["C_CONTIGUOUS"] and y.dtype == np.int64
        assert X.min() == 0.0 and X.max() == 1.0
    # Stratified: each class's test share is within one sample of 25%.
    total = np.bincount(np.concatenate([ds.y_train, ds.y_test]))
    assert np.all(np.abs(np.bincount(ds.y_test) - 0.25 * total) <= 1)
    again = load_dataset("digits")
    np.testing.assert_array_equal(again.X_test, ds.X_test)
    np.testing.assert_array_equal(again.y_train, ds.y_train)


# ----------------------------------------------------------------------------- npz

def test_npz_without_test_split(tmp_path):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), [10, 20, 30, 40])
    X = rng.standard_normal((100, 3)).astype(np.float32) * 50
    np.savez(tmp_path / "mine.npz", X=X, y=y)
    ds = load_dataset(tmp_path / "mine.npz")
    assert ds.name == "mine.npz" and ds.source == str(tmp_path / "mine.npz")
    assert ds.n_classes == 4 and ds.n_features == 3
    assert len(ds.y_train) == 80 and len(ds.y_test) == 20
    assert Counter(ds.y_test.tolist()) == {0: 2, 1: 4, 2: 6, 3: 8}
    assert ds.X_train.dtype == np.float64 and ds.X_train.flags["C_CONTIGUOUS"]
    # Not rescaled: the rows are the file's rows.
    rows = {tuple(r) for r in X.astype(np.float64)}
    assert all(tuple(r) in rows for r in ds.X_train)
    np.testing.assert_array_equal(load_dataset(str(tmp_path / "mine.npz")).y_test, ds.y_test)


def test_npz_with_test_set_and_images(tmp_path):
    X = np.zeros((6, 2, 2), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", X=X, y=[0, 1, 2, 0, 1, 2], X_test=X[:2],
             y_test=np.array([4.0, 1.0]))
    ds = load_dataset(tmp_path / "d.npz")
    assert ds.X_train.shape == (6, 4) and ds.X_test.shape == (2, 4)
    assert ds.n_classes == 5 and ds.y_test.dtype == np.int64


@pytest.mark.parametrize("arrays, message", [
    ({"X": np.zeros((3, 2))}, "missing array y"),
    ({"features": np.zeros((3, 2))}, "missing array X and y .*found: features"),
    ({"X": np.zeros((3, 2)), "y": [0, 1, 0], "X_test": np.zeros((1, 2))},
     "only one of X_test and y_test"),
    ({"X": [[0.0, np.nan], [1.0, 2.0]], "y": [0, 1]}, "non-finite"),
    ({"X": np.zeros((2, 2)), "y": [0, -1]}, "non-negative"),
    ({"X": np.zeros((2, 2)), "y": [0, 1.5]}, "integers"),
    ({"X": np.zeros((2, 2)), "y": [0, 1, 1]}, "2 samples but y has 3"),
    ({"X": np.zeros((2, 2)), "y": [0, 1], "X_test": np.zeros((1, 3)), "y_test": [0]},
     "2 features but X_test has 3"),
    ({"X": np.zeros(4), "y": [0, 1, 0, 1]}, "must be 2-D"),
])
def test_npz_errors(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=message) as info:
        load_dataset(path)
    assert str(path) in str(info.value)


def test_npz_unreadable(tmp_path):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not a zip file")
    with pytest.raises(DataError, match="garbage.npz: cannot read"):
        load_dataset(garbage)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, X=np.array([[object()]], dtype=object), y=[0])
    with pytest.raises(DataError, match="pickled.npz: cannot read"):
        load_dataset(pickled)
    with pytest.raises(DataError, match="no such file"):
        load_dataset(tmp_path / "absent.npz")


# ----------------------------------------------------------------------------- validation

def test_validate_arrays_converts():
    X, y = validate_arrays([[1, 2], [3, 4]], np.array([1.0, 0.0]), n_classes=2)
    assert X.dtype == np.float64 and X.flags["C_CONTIGUOUS"] and y.dtype == np.int64
    np.testing.assert_array_equal(y, [1, 0])


@pytest.mark.parametrize("X, y, n_classes, message", [
    (np.zeros((0, 3)), np.zeros(0, dtype=int), None, "empty"),
    (np.zeros((2, 3)), [0, 3], 3, "label 3 out of range for 3 classes"),
    ([[np.inf]], [0], None, "non-finite"),
    ([["a"]], [0], None, "numeric"),
    (np.zeros((2, 3)), np.zeros((2, 1), dtype=int), None, "1-D"),
    (np.zeros((2, 3)), ["a", "b"], None, "integers"),
    (np.zeros((2, 3)), [0, 1], 0, "positive integer"),
])
def test_validate_arrays_errors(X, y, n_classes, message):
    with pytest.raises(DataError, match=message) as info:
        validate_arrays(X, y, n_classes, where="somefile")
    assert str(info.value).startswith("somefile: ")


# ----------------------------------------------------------------------------- splitting

def test_train_val_split_stratified_and_complete():
    y = np.repeat(np.arange(3), [50, 30, 20])
    X = np.arange(100, dtype=np.float64).reshape(100, 1)  # column 0 = sample id
    X_tr, y_tr, X_val, y_val = train_val_split(X, y, 0.1, seed=4)
    assert len(y_val) == 10 and len(y_tr) == 90
    assert Counter(y_val.tolist()) == {0: 5, 1: 3, 2: 2}
    ids_tr, ids_val = X_tr[:, 0].astype(int), X_val[:, 0].astype(int)
    assert set(ids_tr).isdisjoint(ids_val)
    assert sorted(np.concatenate([ids_tr, ids_val])) == list(range(100))
    assert np.all(np.diff(ids_tr) > 0) and np.all(np.diff(ids_val) > 0)  # order kept
    np.testing.assert_array_equal(y[ids_val], y_val)


def test_train_val_split_rounding_hits_the_target_size():
    y = np.repeat(np.arange(7), [3, 5, 1, 8, 2, 9, 4])  # 32 samples
    _, _, _, y_val = train_val_split(np.zeros((32, 2)), y, 0.3, seed=0)
    assert len(y_val) == round(0.3 * 32)
    counts = np.bincount(y, minlength=7)
    assert np.all(np.abs(np.bincount(y_val, minlength=7) - 0.3 * counts) < 1)


def test_train_val_split_deterministic():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 5))
    y = rng.integers(0, 4, 200)
    first = train_val_split(X, y, 0.25, seed=7)
    second = train_val_split(X, y, 0.25, seed=7)
    other = train_val_split(X, y, 0.25, seed=8)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[2], other[2])


def test_train_val_split_zero_fraction():
    X = np.ones((10, 4), dtype=np.float32)
    y = np.arange(10) % 2
    X_tr, y_tr, X_val, y_val = train_val_split(X, y, 0.0)
    assert X_tr.shape == (10, 4) and y_tr.shape == (10,)
    assert X_val.shape == (0, 4) and X_val.dtype == np.float32
    assert y_val.shape == (0,) and y_val.dtype == y.dtype


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5])
def test_train_val_split_rejects_bad_fraction(fraction):
    with pytest.raises(DataError, match="val_fraction"):
        train_val_split(np.zeros((4, 1)), np.zeros(4), fraction)


def test_train_val_split_rejects_mismatched_lengths():
    with pytest.raises(DataError, match="one label per sample"):
        train_val_split(np.zeros((4, 1)), np.zeros(3), 0.5)


def test_bad_cached_file_is_downloaded_again(isolated, mirror, monkeypatch):
    # With checksums off a truncated download could be cached; the next run re-validates
    # the cache, deletes the bad file and fetches it again instead of failing forever.
    server, arrays, _ = mirror
    monkeypatch.setenv("PCK_DATASET_NO_CHECKSUM", "1")
    make_idx_dataset(isolated["cache"] / "mnist", n_train=20, n_test=10, seed=3)
    bad = isolated["cache"] / "mnist" / "t10k-labels-idx1-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:-12])
    assert_dataset_matches(load_dataset("mnist"), arrays)
    assert [p for p in server.requests if "good" in p] == ["/good/t10k-labels-idx1-ubyte.gz"]
    # A bad file outside the cache is the user's: reported, never deleted.
    own = isolated["tmp"] / "own"
    make_idx_dataset(own, n_train=20, n_test=10, seed=3)
    (own / "train-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b broken")
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz"):
        load_dataset("mnist", data_dir=own)
    assert (own / "train-labels-idx1-ubyte.gz").exists()


def test_missing_file_is_named_when_download_fails(isolated, monkeypatch):
    make_idx_dataset(isolated["cache"] / "mnist", n_train=20, n_test=10, seed=3)
    (isolated["cache"] / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    monkeypatch.setitem(data.MIRRORS, "mnist", ("http://127.0.0.1:1/",))
    with pytest.raises(DataError, match="file t10k-labels-idx1-ubyte.gz \\(missing from "):
        load_dataset("mnist")


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.5])
def test_train_val_split_in_place_gives_the_same_split(fraction):
    rng = np.random.default_rng(2)
    X, y = rng.random((301, 5)), rng.integers(0, 4, 301)
    expected = train_val_split(X, y, fraction, seed=7)
    X2, y2 = X.copy(), y.copy()
    got = train_val_split(X2, y2, fraction, seed=7, copy=False)
    for a, b in zip(expected, got):
        np.testing.assert_array_equal(a, b)
    if fraction:
        assert np.shares_memory(got[0], X2) and not np.shares_memory(got[2], X2)


@pytest.mark.parametrize("command", [["train", "--epochs", "1"], ["theory"],
                                     ["eval", "MODEL"]])
def test_no_download_fails_with_one_line_instead_of_downloading(isolated, monkeypatch,
                                                                 tmp_path, command):
    from click.testing import CliRunner

    from pckernels.model import MLP
    from pckernels_cli.main import cli
    MLP([784, 4, 10]).save(tmp_path / "net.npz")
    command = [str(tmp_path / "net.npz") if c == "MODEL" else c for c in command]

    def no_network(*args, **kwargs):
        raise AssertionError("--no-download must not download")
    monkeypatch.setattr(data, "_download_idx", no_network)
    result = CliRunner().invoke(cli, command + ["--dataset", "mnist", "--no-download"])
    assert result.exit_code == 1, result.output
    assert "IDX files not found" in result.output and "Traceback" not in result.output
