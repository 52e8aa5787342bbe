"""The MLP: initialisation, parameter views, forward/predict, save/load."""
import os
import zipfile

import numpy as np
import pytest

import naive
from pckernels import MLP
from pckernels.kernels import ACTIVATIONS


def test_init_bounds_are_pytorch_linear():
    net = MLP([50, 20, 4, 3], seed=1)
    for W, b in zip(net.weights, net.biases):
        bound = 1 / np.sqrt(W.shape[0])
        for a in (W, b):
            assert np.abs(a).max() <= bound
        # the whole interval is used (not e.g. a normal or a smaller uniform)
        assert np.abs(W).max() > 0.9 * bound
        assert W.min() < -0.5 * bound and W.max() > 0.5 * bound
    # the first layer's 1000 weights look uniform: mean ~ 0, variance bound^2 / 3
    W0 = net.weights[0].astype(np.float64)
    bound = 1 / np.sqrt(50)
    assert abs(W0.mean()) < 0.05 * bound
    assert np.isclose(W0.var(), bound ** 2 / 3, rtol=0.1)


def test_init_is_seeded():
    a, b, c = MLP([4, 3, 2], seed=5), MLP([4, 3, 2], seed=5), MLP([4, 3, 2], seed=6)
    np.testing.assert_array_equal(a.params, b.params)
    assert not np.array_equal(a.params, c.params)
    a.params[:] = 0
    a.reset(5)
    np.testing.assert_array_equal(a.params, b.params)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_layout_and_dtype(dtype):
    net = MLP([3, 4, 2], dtype=dtype)
    assert net.n_params == 3 * 4 + 4 + 4 * 2 + 2 == net.params.size
    assert net.params.dtype == np.dtype(dtype) and net.params.flags["C_CONTIGUOUS"]
    assert [W.shape for W in net.weights] == [(3, 4), (4, 2)]
    assert [b.shape for b in net.biases] == [(4,), (2,)]
    assert net.n_layers == 2
    # flat layout: W_0 (row-major), b_0, W_1, b_1
    flat = np.concatenate([net.weights[0].ravel(), net.biases[0], net.weights[1].ravel(),
                           net.biases[1]])
    np.testing.assert_array_equal(flat, net.params)
    assert list(net.codes) == [ACTIVATIONS["tanh"], ACTIVATIONS["identity"]]


def test_weights_are_views_into_params():
    net = MLP([3, 4, 2], dtype="float64")
    net.weights[0][1, 2] = 42.0
    assert net.params[1 * 4 + 2] == 42.0
    net.biases[1][...] = -7.0
    np.testing.assert_array_equal(net.params[-2:], -7.0)
    net.params[12] = 3.5  # first bias entry
    assert net.biases[0][0] == 3.5
    for a in list(net.weights) + list(net.biases):
        assert np.shares_memory(a, net.params)


def test_assigning_a_layer_copies_with_shape_check():
    net = MLP([3, 4, 2], dtype="float32")
    new = np.arange(12, dtype=np.float64).reshape(3, 4)
    net.weights[0] = new
    assert np.shares_memory(net.weights[0], net.params)  # still a view, not replaced
    np.testing.assert_array_equal(net.params[:12], np.arange(12))
    new[0, 0] = 99  # a copy was taken
    assert net.params[0] == 0
    net.biases[1] = [1, 2]
    np.testing.assert_array_equal(net.params[-2:], [1, 2])
    with pytest.raises(ValueError, match=r"expected shape \(3, 4\)"):
        net.weights[0] = np.zeros((4, 3))
    with pytest.raises(ValueError, match="expected shape"):
        net.biases[0] = np.zeros(5)
    np.testing.assert_array_equal(net.params[:12], np.arange(12))  # untouched on error


@pytest.mark.parametrize("kwargs,match", [
    (dict(sizes=[3]), "at least"),
    (dict(sizes=[3, 0, 2]), ">= 1"),
    (dict(sizes=[3, 2], activation="gelu"), "unknown activation 'gelu'"),
    (dict(sizes=[3, 2], loss="hinge"), "unknown loss"),
    (dict(sizes=[3, 2], dtype="float16"), "float32 or float64"),
])
def test_constructor_validates(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MLP(**kwargs)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_forward_returns_log_probabilities(activation, dtype):
    net = MLP([5, 6, 4], activation=activation, dtype=dtype, seed=2)
    X = np.random.default_rng(0).standard_normal((7, 5))
    out = net.forward(X)
    assert out.shape == (7, 4) and out.dtype == np.dtype(dtype)
    np.testing.assert_allclose(np.exp(out.astype(np.float64)).sum(axis=1), 1.0,
                               rtol=1e-5 if dtype == "float32" else 1e-12)
    hs, _ = naive.forward(*net.split(net.params.astype(np.float64)), activation,
                          X.astype(dtype).astype(np.float64))
    logits = hs[-1]
    ref = logits - logits.max(1, keepdims=True)
    ref -= np.log(np.exp(ref).sum(1, keepdims=True))
    np.testing.assert_allclose(out, ref, rtol=1e-4 if dtype == "float32" else 1e-11,
                               atol=1e-5 if dtype == "float32" else 1e-12)
    np.testing.assert_array_equal(net.predict(X), np.argmax(out, axis=1))


def test_forward_mse_returns_raw_output_and_single_row():
    net = MLP([3, 4, 2], loss="mse", dtype="float64", seed=1)
    X = np.random.default_rng(1).standard_normal((3, 3))
    hs, _ = naive.forward(*net.split(net.params), "tanh", X)
    np.testing.assert_allclose(net.forward(X), hs[-1], rtol=1e-12)
    np.testing.assert_allclose(net.forward(X[0]), hs[-1][:1], rtol=1e-12)  # 1-D: one sample


def test_forward_large_batch_is_chunked_consistently():
    net = MLP([3, 5, 3], dtype="float64", seed=3)
    X = np.random.default_rng(2).standard_normal((4096 + 37, 3))
    out = net.forward(X)
    np.testing.assert_allclose(out[-37:], net.forward(X[-37:]), rtol=1e-13)
    np.testing.assert_allclose(out[:5], net.forward(X[:5]), rtol=1e-13)


def test_predict_knows_the_answer():
    net = MLP([2, 2], activation="identity", dtype="float64")
    net.weights[0] = [[1.0, 0.0], [0.0, 1.0]]
    net.biases[0] = [0.0, 0.0]
    np.testing.assert_array_equal(net.predict([[2.0, 1.0], [0.0, 3.0], [-1.0, -2.0]]),
                                  [0, 1, 0])


def test_forward_rejects_bad_input():
    net = MLP([3, 2])
    with pytest.raises(ValueError, match="shape"):
        net.forward(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="NaN"):
        net.forward(np.array([[0.0, np.inf, 1.0]]))


# ----------------------------------------------------------------------------- save / load

@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_save_load_roundtrip(tmp_path, dtype):
    net = MLP([4, 3, 3, 2], activation="leaky_relu", loss="mse", dtype=dtype, seed=9)
    net.params[:] += 0.125  # not the seed's initialisation
    path = tmp_path / "net.npz"
    net.save(path)
    back = MLP.load(path)
    assert back.params.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(back.params, net.params)
    assert back.config() == net.config()
    assert list(back.sizes) == [4, 3, 3, 2]
    X = np.random.default_rng(0).standard_normal((3, 4))
    np.testing.assert_array_equal(back.forward(X), net.forward(X))
    for W in back.weights:  # the loaded net's views work too
        assert np.shares_memory(W, back.params)
    assert sorted(os.listdir(tmp_path)) == ["net.npz"]  # no temporary left behind


def test_save_without_npz_suffix_keeps_the_name(tmp_path):
    net = MLP([2, 2])
    net.save(tmp_path / "model")
    assert sorted(os.listdir(tmp_path)) == ["model"]
    np.testing.assert_array_equal(MLP.load(tmp_path / "model").params, net.params)


def test_failing_save_leaves_no_partial_file(tmp_path, monkeypatch):
    path = tmp_path / "net.npz"
    old = MLP([2, 2], seed=1)
    old.save(path)
    before = path.read_bytes()

    def broken_savez(f, **arrays):
        f.write(b"PK\x03\x04 half an archive")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        MLP([2, 2], seed=2).save(path)
    assert path.read_bytes() == before  # the old checkpoint is intact
    assert sorted(os.listdir(tmp_path)) == ["net.npz"]
    with pytest.raises(OSError, match="disk full"):
        MLP([2, 2], seed=2).save(tmp_path / "new.npz")
    assert sorted(os.listdir(tmp_path)) == ["net.npz"]


def _checkpoint_bytes(tmp_path):
    path = tmp_path / "good.npz"
    MLP([3, 2, 2]).save(path)
    return path.read_bytes()


def _write_arrays(path, **arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)


@pytest.mark.parametrize("kind", ["truncated", "empty", "garbage", "text", "npy", "zip",
                                  "other_npz", "no_sizes", "wrong_count", "bad_activation",
                                  "missing"])
def test_load_rejects_corrupt_files_with_valueerror(tmp_path, kind):
    path = tmp_path / "bad.npz"
    good = _checkpoint_bytes(tmp_path)
    fmt = np.array("pckernels-mlp-1")
    full = dict(format=fmt, sizes=np.array([3, 2]), activation=np.array("tanh"),
                loss=np.array("nll"), dtype=np.array("float32"), seed=np.array(0),
                params=np.zeros(8, dtype=np.float32))
    if kind == "truncated":
        path.write_bytes(good[:len(good) // 2])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "garbage":
        path.write_bytes(np.random.default_rng(0).bytes(300))
    elif kind == "text":
        path.write_text("hello\n")
    elif kind == "npy":
        with open(path, "wb") as f:
            np.save(f, np.ones(3))
    elif kind == "zip":
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("readme.txt", "not numpy")
    elif kind == "other_npz":
        _write_arrays(path, a=np.ones(3))
    elif kind == "no_sizes":
        _write_arrays(path, format=fmt)
    elif kind == "wrong_count":
        _write_arrays(path, **dict(full, params=np.zeros(5, dtype=np.float32)))
    elif kind == "bad_activation":
        _write_arrays(path, **dict(full, activation=np.array("gelu")))
    elif kind == "missing":
        path = tmp_path / "does-not-exist.npz"
    with pytest.raises(ValueError) as info:
        MLP.load(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message or path.name in message
