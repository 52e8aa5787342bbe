"""Datasets: scikit-learn's digits, MNIST and Fashion-MNIST from IDX files, and .npz files.

Everything is validated here, once, and handed on as a :class:`Dataset` of C-contiguous
features in the model's dtype (float64 by default) and int64 labels, so the training code
never checks its inputs again.

MNIST-style datasets are looked up, in order, in

1. ``data_dir`` (the files in ``data_dir/<name>``, else directly in ``data_dir``),
2. ``$PCK_DATA_DIR`` (same two forms),
3. ``SYSTEM_DATA_DIR/<name>`` (``/usr/share/datasets/<name>``, where Debian's
   ``dataset-fashion-mnist`` package installs its files),
4. the user cache ``$XDG_CACHE_HOME/pckernels/<name>`` (default ``~/.cache/pckernels``),

and downloaded into the cache when absent everywhere. Environment variables:

``PCK_DATA_DIR``
    an extra directory to search.
``PCK_DATASET_MIRROR``
    a base URL tried before the built-in mirrors (files are fetched as ``<base>/<file>.gz``).
``PCK_DATASET_NO_CHECKSUM``
    ``1`` skips the MD5 check of downloads (for private mirrors serving other files).
"""
import gzip
import hashlib
import os
import sys
import tempfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path

import numpy as np

__all__ = ["DataError", "Dataset", "DATASETS", "load_dataset", "train_val_split",
           "read_idx", "write_idx", "validate_arrays"]

#: Dataset names the CLI offers (an .npz path is accepted as well).
DATASETS = ("digits", "mnist", "fashion-mnist")

#: The four IDX files of an MNIST-style dataset, without the optional ``.gz``.
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

#: System-wide dataset directory searched as ``SYSTEM_DATA_DIR/<name>``.
SYSTEM_DATA_DIR = "/usr/share/datasets"

#: Download cache root; ``None`` means ``$XDG_CACHE_HOME/pckernels`` (default
#: ``~/.cache/pckernels``), read at call time.
CACHE_DIR = None

#: Base URLs of the public mirrors, tried in order after ``$PCK_DATASET_MIRROR``.
MIRRORS = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion-mnist": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
}

#: Published MD5 sums of the gzip files as distributed by the mirrors. (Locally installed
#: copies are not checked: Debian's package, for one, recompresses them.)
MD5SUMS = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}

#: Seconds to wait for a mirror to connect or to send the next block.
DOWNLOAD_TIMEOUT = 30.0

_CHUNK = 1 << 16

#: Most classes a dataset may have (its labels are 0 .. MAX_CLASSES - 1): a label is a
#: class number, and each class is an output unit.
MAX_CLASSES = 100_000
_N_CLASSES = {"digits": 10, "mnist": 10, "fashion-mnist": 10}

# IDX type codes (third magic byte) and their big-endian NumPy types.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_IDX_CODES = {np.dtype(t).newbyteorder("="): code for code, t in _IDX_DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"


class DataError(ValueError):
    """A dataset is missing, malformed or invalid; the message is one line naming the file."""


@dataclass(repr=False, eq=False)
class Dataset:
    """A train/test classification dataset, validated.

    Attributes
    ----------
    name : str
        ``"digits"``, ``"mnist"``, ``"fashion-mnist"`` or the .npz file name.
    X_train : ndarray of shape (n_train, n_features), float64 (or the dtype asked for),
        C-contiguous
        Training inputs (pixels scaled to [0, 1] for the built-in datasets).
    y_train : ndarray of shape (n_train,), int64
        Training labels in ``0 .. n_classes - 1``.
    X_test : ndarray of shape (n_test, n_features), float64, C-contiguous
    y_test : ndarray of shape (n_test,), int64
    n_classes : int
    source : str
        Where the data came from: a directory, a file, or ``"sklearn load_digits"``.
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    source: str

    @property
    def n_features(self):
        """Number of input features (columns of ``X_train``)."""
        return self.X_train.shape[1]

    def __repr__(self):
        return (f"Dataset(name={self.name!r}, n_train={len(self.y_train)}, "
                f"n_test={len(self.y_test)}, n_features={self.n_features}, "
                f"n_classes={self.n_classes}, source={self.source!r})")


# ----------------------------------------------------------------------------- IDX files

def read_idx(path):
    """Read an IDX file, raw or gzip-compressed (recognised by its magic bytes).

    The payload is read straight into an array of the header's size: a file is never
    decompressed beyond what its header declares (a gzip bomb stops at the first byte too
    many), and a header declaring more than the file can hold is rejected before anything
    is allocated.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    ndarray
        Shape given by the header's dimensions; dtype the header's type (uint8, int8,
        int16, int32, float32 or float64) in native byte order.

    Raises
    ------
    DataError
        If the file cannot be read, is not IDX (bad magic or type code), its payload is
        shorter or longer than the header's dimensions require, or it would not fit in
        memory.
    """
    path = Path(path)
    try:
        with open(path, "rb") as raw:
            compressed = raw.read(2) == _GZIP_MAGIC
            file_size = os.fstat(raw.fileno()).st_size
            raw.seek(0)
            f = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
            dims, dtype, header = _read_idx_header(f, path)
            expected = _prod(dims) * dtype.itemsize
            if not compressed and file_size - header != expected:
                payload = file_size - header
                kind = "truncated" if payload < expected else "too long"
                raise DataError(f"{path}: {kind}: payload is {payload} bytes but the "
                                f"header's dimensions {dims} of "
                                f"{dtype.newbyteorder('=').name} need {expected}")
            # deflate expands at most ~1032:1: a longer payload cannot be in this file
            if compressed and expected > file_size * 1032 + 1024:
                raise DataError(f"{path}: truncated: the header's dimensions {dims} of "
                                f"{dtype.newbyteorder('=').name} need {expected} bytes, "
                                f"more than the file's {file_size} bytes can hold")
            _check_fits(expected, path)
            array = np.empty(_prod(dims), dtype=dtype)
            payload = _read_into(f, memoryview(array).cast("B"))
            if payload < expected:
                raise DataError(f"{path}: truncated: payload is {payload} bytes but the "
                                f"header's dimensions {dims} of "
                                f"{dtype.newbyteorder('=').name} need {expected}")
            extra = len(f.read(_CHUNK))
            if extra:
                where = (f"payload is {expected + extra} bytes" if extra < _CHUNK else
                         f"payload is more than {expected + extra} bytes")
                raise DataError(f"{path}: too long: {where} but the header's dimensions "
                                f"{dims} of {dtype.newbyteorder('=').name} need {expected}")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: corrupt gzip data ({exc})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    array = array.reshape(dims)
    if not dtype.isnative:
        array = array.byteswap(inplace=True).view(dtype.newbyteorder("="))
    return array


def _prod(dims):
    """Product of a shape in Python integers (no int64 overflow)."""
    n = 1
    for d in dims:
        n *= int(d)
    return n


def _check_fits(n_bytes, path):
    from .memory import MemoryLimitError, check_memory
    try:
        check_memory(n_bytes, f"reading {path}")
    except MemoryLimitError as exc:
        raise DataError(str(exc)) from None


def _read_exactly(f, n):
    """Up to ``n`` bytes (fewer only at the end of the file)."""
    out = bytearray()
    while len(out) < n:
        chunk = f.read(n - len(out))
        if not chunk:
            break
        out += chunk
    return bytes(out)


def _read_into(f, buffer):
    """Fill ``buffer`` from ``f``; return the number of bytes read."""
    got, n = 0, len(buffer)
    while got < n:
        k = f.readinto(buffer[got:min(n, got + (1 << 24))])
        if not k:
            break
        got += k
    return got


def _read_idx_header(f, path):
    """Parse the magic number and dimensions; return ``(dims, dtype, header_bytes)``."""
    magic = _read_exactly(f, 4)
    if len(magic) < 4:
        raise DataError(f"{path}: not an IDX file (only {len(magic)} bytes)")
    if magic[0] != 0 or magic[1] != 0:
        raise DataError(f"{path}: not an IDX file (magic number 0x{magic.hex()} "
                        "does not start with two zero bytes)")
    code, ndim = magic[2], magic[3]
    if code not in _IDX_DTYPES:
        raise DataError(f"{path}: unknown IDX type code 0x{code:02x} (magic number "
                        f"0x{magic.hex()}; valid codes 08, 09, 0b, 0c, 0d, 0e)")
    if ndim == 0:
        raise DataError(f"{path}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    raw_dims = _read_exactly(f, 4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise DataError(f"{path}: truncated IDX header ({4 + len(raw_dims)} bytes, "
                        f"{ndim} dimensions need {header})")
    dims = tuple(int.from_bytes(raw_dims[4 * i:4 * i + 4], "big") for i in range(ndim))
    return dims, np.dtype(_IDX_DTYPES[code]), header


def write_idx(path, array, compress=False):
    """Write ``array`` as an IDX file.

    Parameters
    ----------
    path : str or os.PathLike
    array : array_like with at least one dimension
        dtype uint8, int8, int16, int32, float32 or float64 (the types IDX can hold);
        convert other types first, e.g. ``labels.astype(np.uint8)``.
    compress : bool, default False
        Write gzip-compressed (conventionally with a ``.gz`` suffix).

    Raises
    ------
    DataError
        If the dtype has no IDX code, the array is 0-dimensional, has more than 255
        dimensions, or a dimension does not fit in 32 bits.
    """
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in _IDX_CODES:
        raise DataError(f"{path}: IDX cannot hold dtype {array.dtype.name}; use one of "
                        "uint8, int8, int16, int32, float32, float64")
    if not 1 <= array.ndim <= 255:
        raise DataError(f"{path}: IDX needs 1 to 255 dimensions, got shape {array.shape}")
    if max(array.shape) >= 2 ** 32:
        raise DataError(f"{path}: dimension too large for IDX in shape {array.shape}")
    header = bytes([0, 0, _IDX_CODES[native], array.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    payload = np.ascontiguousarray(array, dtype=native.newbyteorder(">")).tobytes()
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        f.write(header)
        f.write(payload)


# ----------------------------------------------------------------------------- validation

def _check_features(X, where, name="X", dtype=np.float64):
    """Return ``X`` as C-contiguous ``dtype`` after checking shape, type and finiteness.

    A value finite in the file but beyond the range of ``dtype`` (1e39 in float32) is an
    error naming the array, row and column, as is any NaN or infinity. Converted in chunks
    of rows, so at most one extra chunk is held besides the result.
    """
    X = np.asarray(X)
    dtype = np.dtype(dtype)
    if X.ndim != 2:
        raise DataError(f"{where}: {name} must be 2-D (n_samples, n_features), got shape "
                        f"{X.shape}")
    if X.size == 0:
        raise DataError(f"{where}: {name} is empty (shape {X.shape})")
    if X.dtype.kind not in "biuf":
        raise DataError(f"{where}: {name} must be numeric, got dtype {X.dtype}")
    out = X if X.dtype == dtype and X.flags.c_contiguous else None
    if out is None:
        from .memory import MemoryLimitError, check_memory
        try:
            check_memory(X.size * dtype.itemsize, f"{where}: {name} as {dtype.name}")
        except MemoryLimitError as exc:
            raise DataError(str(exc)) from None
        out = np.empty(X.shape, dtype=dtype)
    converting = out is not X
    rows = max(1, (1 << 22) // max(1, X.shape[1]))
    for start in range(0, len(X), rows):
        chunk = out[start:start + rows]
        if converting:
            with np.errstate(over="ignore", invalid="ignore"):
                chunk[...] = X[start:start + rows]
        if chunk.dtype.kind == "f":
            finite = np.isfinite(chunk)
            if not finite.all():
                row, col = np.argwhere(~finite)[0]
                value = X[start + row, col]
                if np.isfinite(value):
                    raise DataError(f"{where}: {name}[{start + row}, {col}] = {value:g} "
                                    f"overflows {dtype.name} (largest "
                                    f"{np.finfo(dtype).max:g}); scale the data")
                bad = X.size - int(np.isfinite(X).sum())
                raise DataError(f"{where}: {name} has {bad} non-finite values (first at "
                                f"row {start + row}, column {col}: {value})")
    return out


def _check_labels(y, n_classes, where):
    """Return ``y`` as int64 after checking it is 1-D, integer-valued and in range."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise DataError(f"{where}: y must be 1-D (n_samples,), got shape {y.shape}")
    if y.size == 0:
        raise DataError(f"{where}: y is empty")
    if y.dtype.kind == "f":
        bad = ~np.isfinite(y) | (y != np.round(y))
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(f"{where}: labels must be integers, y[{i}] = {y[i]}")
    elif y.dtype.kind not in "biu":
        raise DataError(f"{where}: labels must be integers, got dtype {y.dtype}")
    low, high = y.min(), y.max()
    if low < 0:
        raise DataError(f"{where}: labels must be non-negative, found {low}")
    if high >= MAX_CLASSES:
        raise DataError(f"{where}: label {high:.0f} is too large: labels are class numbers "
                        f"0..n_classes-1, and at most {MAX_CLASSES} classes are supported")
    if n_classes is not None and high >= n_classes:
        raise DataError(f"{where}: label {high} out of range for {n_classes} classes "
                        f"(expected 0..{n_classes - 1})")
    return y.astype(np.int64)


def validate_arrays(X, y, n_classes=None, *, where="data", dtype=np.float64, names=("X", "y")):
    """Check a feature matrix and its labels; return them as float64 and int64.

    Parameters
    ----------
    X : array_like of shape (n_samples, n_features)
        Numeric and finite.
    y : array_like of shape (n_samples,)
        Non-negative integers (an integer dtype, or floats with integral values).
    n_classes : int, optional
        If given, every label must be below it.
    where : str, default "data"
        Prefix for error messages, e.g. the file the arrays came from.
    dtype : {float64, float32}, default float64
        dtype of the returned X; values beyond its range are an error.
    names : (str, str), default ("X", "y")
        Names of the two arrays in error messages.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), ``dtype``, C-contiguous
    y : ndarray of shape (n_samples,), int64

    Raises
    ------
    DataError
        On a wrong shape, an empty array, non-finite or non-numeric X, non-integer,
        negative or out-of-range labels, or different sample counts.
    """
    if n_classes is not None and (int(n_classes) != n_classes or n_classes < 1):
        raise DataError(f"{where}: n_classes must be a positive integer, got {n_classes}")
    X = _check_features(X, where, names[0], dtype)
    y = _check_labels(y, n_classes, where)
    if len(X) != len(y):
        raise DataError(f"{where}: {names[0]} has {len(X)} samples but {names[1]} has "
                        f"{len(y)} labels")
    return X, y


# ----------------------------------------------------------------------------- splitting

def train_val_split(X, y, val_fraction, seed=0, copy=True):
    """Split off a stratified validation set.

    Every class contributes to the validation set in proportion to its size (largest
    remainder rounding), samples are drawn with ``numpy.random.default_rng(seed)``, and
    both parts keep the original sample order, so a given seed always gives the same split.

    Parameters
    ----------
    X : ndarray of shape (n_samples, ...)
    y : ndarray of shape (n_samples,)
        Class labels.
    val_fraction : float in [0, 1)
        Fraction of samples for validation, ``round(val_fraction * n_samples)`` of them
        (at least one if ``val_fraction > 0``).
    seed : int, default 0
    copy : bool, default True
        False reuses the memory of ``X`` and ``y`` for the training part (for big
        datasets: no second copy): their rows are overwritten, compacted in order, and
        ``X_train`` is a view of the first rows of ``X``. Only the validation part is new.

    Returns
    -------
    X_train : ndarray of shape (n_samples - n_val, ...)
    y_train : ndarray of shape (n_samples - n_val,)
    X_val : ndarray of shape (n_val, ...)
    y_val : ndarray of shape (n_val,)
        With ``val_fraction == 0`` the inputs themselves and empty arrays of the right
        trailing shape and dtype.
    """
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim == 0 or y.ndim != 1 or len(X) != len(y):
        raise DataError(f"train_val_split: X of shape {X.shape} and y of shape {y.shape} "
                        "do not have one label per sample")
    if not 0.0 <= val_fraction < 1.0:
        raise DataError(f"train_val_split: val_fraction must be in [0, 1), got {val_fraction}")
    n = len(y)
    if val_fraction == 0:
        return X, y, X[:0], y[:0]
    if n < 2:
        raise DataError(f"train_val_split: need at least 2 samples to split, got {n}")
    n_val = min(max(int(round(val_fraction * n)), 1), n - 1)

    _, y_index = np.unique(y, return_inverse=True)
    counts = np.bincount(y_index)
    # Largest remainder, in exact integer arithmetic: sum(per_class) == n_val.
    per_class = n_val * counts // n
    remainder = n_val * counts % n
    order = np.argsort(-remainder, kind="stable")
    per_class[order[:n_val - per_class.sum()]] += 1

    rng = np.random.default_rng(seed)
    is_val = np.zeros(n, dtype=bool)
    for c, k in enumerate(per_class):
        members = np.flatnonzero(y_index == c)
        is_val[rng.permutation(members)[:k]] = True
    if copy or not (X.flags.writeable and y.flags.writeable):
        return X[~is_val], y[~is_val], X[is_val], y[is_val]
    X_val, y_val = X[is_val], y[is_val]
    train_rows = np.flatnonzero(~is_val)
    # Row i of the training part comes from row train_rows[i] >= i: copying chunks front
    # to back never overwrites a row a later chunk still has to read.
    step = max(1, (1 << 22) // max(1, X[0].size))
    for start in range(0, len(train_rows), step):
        rows = train_rows[start:start + step]
        X[start:start + len(rows)] = X[rows]
        y[start:start + len(rows)] = y[rows]
    return X[:len(train_rows)], y[:len(train_rows)], X_val, y_val


# ----------------------------------------------------------------------------- loading

def load_dataset(name_or_path, data_dir=None, download=True, progress=None,
                 dtype="float64"):
    """Load a dataset by name, or from an .npz file.

    Parameters
    ----------
    name_or_path : str or os.PathLike
        ``"digits"`` (scikit-learn's bundled 8x8 digits, offline), ``"mnist"``,
        ``"fashion-mnist"``, or the path of an .npz file holding ``X`` of shape
        (n_samples, n_features) and ``y`` of shape (n_samples,), and optionally ``X_test``
        and ``y_test``. Without a test set, a stratified 20% is split off with seed 0.
        Arrays in an .npz are used as given (only converted to float64): scale them
        yourself. Inputs with more than two dimensions are flattened per sample.
    data_dir : str or os.PathLike, optional
        Directory searched first for the IDX files of mnist / fashion-mnist (see the
        module docstring for the full search order).
    download : bool, default True
        Download missing IDX files into the user cache.
    progress : bool, optional
        Show a download progress bar; by default only when stderr is a terminal.
    dtype : {"float64", "float32"}, default "float64"
        dtype of the features (the model's, so training makes no second copy). Values
        beyond its range are an error naming the array, row and column.

    Returns
    -------
    Dataset
        ``X_*`` of ``dtype``, C-contiguous (pixels in [0, 1] for the named datasets: digits has
        64 features, the MNIST-style ones 784), ``y_*`` int64, ``n_classes`` 10 for the
        named datasets and ``max label + 1`` for .npz files (at least 2, at most
        ``MAX_CLASSES``; the training labels must hold at least 2 classes).

    Raises
    ------
    DataError
        On an unknown name, missing or malformed files, values that overflow ``dtype``,
        a dataset too small to split, or a failed download.
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise DataError(f"dtype must be float32 or float64, got {dtype}")
    if isinstance(name_or_path, str):
        key = name_or_path.strip().lower().replace("_", "-")
        if key == "fashionmnist":
            key = "fashion-mnist"
        if key == "digits":
            return _load_digits(dtype)
        if key in ("mnist", "fashion-mnist"):
            return _load_idx_dataset(key, data_dir, download, progress, dtype)
    path = Path(name_or_path)
    if path.suffix.lower() == ".npz" or path.is_file():
        return _load_npz(path, dtype)
    raise DataError(f"unknown dataset {str(name_or_path)!r}: expected one of "
                    f"{', '.join(DATASETS)} or the path of an .npz file")


def _load_digits(dtype=np.float64):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    X = digits.data / 16.0
    y = digits.target.astype(np.int64)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=0, stratify=y)
    return Dataset("digits", np.ascontiguousarray(X_train, dtype=dtype), y_train,
                   np.ascontiguousarray(X_test, dtype=dtype), y_test, 10,
                   "sklearn load_digits")


def _load_npz(path, dtype=np.float64):
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if not hasattr(archive, "files"):
                raise DataError(f"{path}: not an .npz archive (a single .npy array?)")
            arrays = {key: archive[key] for key in archive.files}
    except DataError:
        raise
    except Exception as exc:  # np.load signals a bad archive with many exception types
        raise DataError(f"{path}: cannot read as .npz ({type(exc).__name__}: {exc})") from None
    missing = [key for key in ("X", "y") if key not in arrays]
    if missing:
        raise DataError(f"{path}: missing array {' and '.join(missing)} (found: "
                        f"{', '.join(sorted(arrays)) or 'nothing'}); expected X and y, "
                        "optionally X_test and y_test")
    if ("X_test" in arrays) != ("y_test" in arrays):
        raise DataError(f"{path}: has only one of X_test and y_test; give both or neither")

    where = str(path)
    X, y = validate_arrays(_flatten(arrays.pop("X")), arrays.pop("y"), where=where,
                           dtype=dtype)
    if "X_test" in arrays:
        X_test, y_test = validate_arrays(_flatten(arrays.pop("X_test")), arrays.pop("y_test"),
                                         where=where, dtype=dtype, names=("X_test", "y_test"))
        if X_test.shape[1] != X.shape[1]:
            raise DataError(f"{where}: X has {X.shape[1]} features but X_test has "
                            f"{X_test.shape[1]}")
    else:
        if len(y) < 2:
            raise DataError(f"{where}: only {len(y)} sample and no X_test/y_test; need at "
                            "least 2 samples (one to train, one to test) or a test set")
        X, y, X_test, y_test = train_val_split(X, y, 0.2, seed=0)
    classes = np.unique(y)
    if len(classes) < 2:
        raise DataError(f"{where}: every training label is {classes[0]}; a classifier "
                        "needs at least 2 classes")
    n_classes = int(max(y.max(), y_test.max())) + 1
    return Dataset(path.name, X, y, X_test, y_test, n_classes, str(path))


def _flatten(X):
    X = np.asarray(X)
    return X.reshape(len(X), -1) if X.ndim > 2 else X


def _cache_root():
    if CACHE_DIR is not None:
        return Path(CACHE_DIR)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "pckernels"


def _search_dirs(name, data_dir):
    """Candidate directories for dataset ``name``, in lookup order."""
    dirs = []
    for base in (data_dir, os.environ.get("PCK_DATA_DIR")):
        if base:
            dirs += [Path(base) / name, Path(base)]
    dirs.append(Path(SYSTEM_DATA_DIR) / name)
    dirs.append(_cache_root() / name)
    return dirs


def _idx_files_in(directory):
    """Map each IDX stem to its file in ``directory`` (raw preferred over .gz)."""
    found = {}
    for stem in IDX_FILES:
        for candidate in (directory / stem, directory / f"{stem}.gz"):
            if candidate.is_file():
                found[stem] = candidate
                break
    return found


def _load_idx_dataset(name, data_dir, download, progress, dtype=np.float64):
    if data_dir is not None and not Path(data_dir).is_dir():
        raise DataError(f"data directory {data_dir} does not exist")
    searched = _search_dirs(name, data_dir)
    partial = []
    cache = searched[-1]
    for directory in searched:
        files = _idx_files_in(directory)
        if len(files) == len(IDX_FILES):
            if directory != cache or not download:
                return _read_idx_dataset(name, directory, files, dtype)
            try:
                return _read_idx_dataset(name, directory, files, dtype)
            except DataError:
                # A bad file in our own cache (a truncated download accepted without a
                # checksum) is deleted and fetched again rather than failing every run.
                if not _drop_bad_files(files.values()):
                    raise
            break
        if files:
            lacking = [stem for stem in IDX_FILES if stem not in files]
            partial.append(f"{directory} lacks {', '.join(lacking)}")

    looked = ", ".join(str(d) for d in searched)
    note = f" ({'; '.join(partial)})" if partial else ""
    if not download:
        raise DataError(f"{name}: IDX files not found; looked in {looked}{note}; put "
                        f"{', '.join(IDX_FILES)} (raw or .gz) in --data-dir or $PCK_DATA_DIR")
    _download_idx(name, cache, progress)
    return _read_idx_dataset(name, cache, _idx_files_in(cache), dtype)


def _drop_bad_files(paths):
    """Delete the files among ``paths`` that are not valid IDX; return how many."""
    dropped = 0
    for path in paths:
        try:
            read_idx(path)
        except DataError:
            try:
                os.unlink(path)
                dropped += 1
            except OSError:
                pass
    return dropped


def _read_idx_dataset(name, directory, files, dtype=np.float64):
    dtype = np.dtype(dtype)
    n_classes = _N_CLASSES[name]
    parts = []
    for split in ("train", "t10k"):
        images_path = files[f"{split}-images-idx3-ubyte"]
        labels_path = files[f"{split}-labels-idx1-ubyte"]
        images = read_idx(images_path)
        labels = read_idx(labels_path)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise DataError(f"{images_path}: expected uint8 images of shape (n, rows, cols) "
                            f"(magic 0x00000803), got {images.dtype.name} of shape "
                            f"{images.shape}")
        if labels.ndim != 1 or labels.dtype != np.uint8:
            raise DataError(f"{labels_path}: expected uint8 labels of shape (n,) "
                            f"(magic 0x00000801), got {labels.dtype.name} of shape "
                            f"{labels.shape}")
        if len(images) != len(labels):
            raise DataError(f"{labels_path}: {len(labels)} labels for {len(images)} images "
                            f"in {images_path.name}")
        if len(images) == 0:
            raise DataError(f"{images_path}: no images")
        y = _check_labels(labels, n_classes, str(labels_path))
        del labels
        images = images.reshape(len(images), -1)
        _check_fits(images.size * np.dtype(dtype).itemsize, images_path)
        # Converted in chunks straight to the model's dtype: the peak is the uint8 images
        # plus the result, not a float64 copy and another for the division.
        X = np.empty(images.shape, dtype=dtype)
        rows = max(1, (1 << 22) // max(1, images.shape[1]))
        for start in range(0, len(images), rows):
            np.divide(images[start:start + rows], dtype.type(255), out=X[start:start + rows],
                      dtype=dtype)
        del images
        parts += [X, y]
    if parts[0].shape[1] != parts[2].shape[1]:
        raise DataError(f"{directory}: train images have {parts[0].shape[1]} pixels but "
                        f"test images have {parts[2].shape[1]}")
    return Dataset(name, *parts, n_classes, str(directory))


# ----------------------------------------------------------------------------- download

class _FetchError(Exception):
    """One URL failed; the loader tries the next mirror."""


def _download_idx(name, directory, progress):
    """Download the IDX files of ``name`` missing from ``directory``, verified, atomically."""
    mirrors = list(MIRRORS[name])
    override = os.environ.get("PCK_DATASET_MIRROR")
    if override:
        mirrors.insert(0, override)
    check = os.environ.get("PCK_DATASET_NO_CHECKSUM", "") not in ("1", "true", "yes")
    show = sys.stderr.isatty() if progress is None else bool(progress)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"could not download {name}: cannot create {directory} "
                        f"({exc.strerror or exc})") from None

    have = _idx_files_in(directory)
    for stem in IDX_FILES:
        if stem in have:
            continue
        filename = f"{stem}.gz"
        expected = MD5SUMS[name][filename] if check else None
        errors = []
        for base in mirrors:
            url = base.rstrip("/") + "/" + filename
            try:
                _fetch(url, directory / filename, expected, show)
                break
            except _FetchError as exc:
                errors.append(f"{url}: {exc}")
        else:
            raise DataError(f"could not download {name} file {filename} (missing from "
                            f"{directory}): {'; '.join(errors)}; put the IDX files in "
                            "--data-dir or $PCK_DATA_DIR")


def _fetch(url, destination, expected_md5, show):
    """Stream ``url`` into a temporary file next to ``destination``; rename it when good."""
    try:
        fd, tmp = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.",
                                   suffix=".part")
    except OSError as exc:
        raise DataError(f"cannot write to {destination.parent} "
                        f"({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "wb") as out:
            digest = hashlib.md5(usedforsecurity=False)
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response:
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                received = 0
                with _progress_bar(show, total, destination.name) as bar:
                    while chunk := response.read(_CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        received += len(chunk)
                        bar.update(len(chunk))
        if total is not None and received != total:
            raise _FetchError(f"connection closed after {received} of {total} bytes")
        if expected_md5 is not None and digest.hexdigest() != expected_md5:
            raise _FetchError(f"checksum mismatch (MD5 {digest.hexdigest()}, "
                              f"expected {expected_md5})")
        os.replace(tmp, destination)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise _FetchError(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise _FetchError(str(exc.reason)) from None
    except (OSError, HTTPException, ValueError) as exc:
        raise _FetchError(f"{type(exc).__name__}: {exc}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class _NoProgress:
    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False

    def update(self, n):
        pass


def _progress_bar(show, total, label):
    if not show:
        return _NoProgress()
    import click

    if total is None:
        click.echo(f"downloading {label} ...", err=True)
        return _NoProgress()
    return click.progressbar(length=total, label=f"downloading {label}", file=sys.stderr)
