"""Generative PC classifier, ``gpc`` (docs/algorithms.md, "Generative PC")."""
import numpy as np
import pytest

import pckernels as pk
from pckernels.gpc import GenerativePC

from cli_checks import clean_error

ENERGIES = ("gaussian", "categorical")


def tiny(label_energy, seed=0, sizes=(6, 5, 4, 3)):
    return GenerativePC(list(sizes), activation="tanh", label_energy=label_energy,
                        dtype="float64", seed=seed)


def batch(rng, n=7, width=6, classes=3):
    return rng.uniform(0, 1, size=(n, width)), rng.integers(0, classes, size=n)


@pytest.mark.parametrize("label_energy", ENERGIES)
@pytest.mark.parametrize("labelled", [True, False])
def test_inference_never_raises_the_energy(label_energy, labelled, rng):
    net = tiny(label_energy)
    net.weights[1][...] *= 6  # strong coupling: the curvature step alone is not enough
    net.set_inference(step_size=8.0)  # too large a step: the safeguard must act
    X, y = batch(rng)
    result = net.infer(X, y if labelled else None, steps=40, trace=True)
    trace = np.array(result.trace)
    assert result.rejected > 0
    assert np.all(np.diff(trace, axis=0) <= 1e-12 * np.abs(trace[:-1]))
    assert np.all(result.energy < result.energy_start)
    np.testing.assert_allclose(result.energy,
                               net.energy(result.states, X, y if labelled else None))


@pytest.mark.parametrize("label_energy", ENERGIES)
def test_weight_update_is_minus_the_energy_gradient(label_energy, rng):
    net = tiny(label_energy)
    X, y = batch(rng)
    states = net.infer(X, y, steps=10).states
    grad = net.weight_gradient(states, X, y)
    params = net.params
    fd = np.empty_like(grad)
    h = 1e-6
    for i in range(params.size):
        old = params[i]
        params[i] = old + h
        up = np.mean(net.energy(states, X, y))
        params[i] = old - h
        down = np.mean(net.energy(states, X, y))
        params[i] = old
        fd[i] = (up - down) / (2 * h)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-9)
    # what training applies: the optimizer steps against this gradient
    _, inferred = net.train_gradient(X, y, out := net.zeros_like_params())
    np.testing.assert_allclose(out, net.weight_gradient(inferred.states, X, y), rtol=1e-12)


@pytest.mark.parametrize("label_energy", ENERGIES)
def test_state_gradient_matches_finite_differences(label_energy, rng):
    net = tiny(label_energy)
    X, y = batch(rng)
    states = net.infer(X, None, steps=3).states
    target = net._uniform(X.shape[0])
    _, _, cache = net._energy(states, X, target)
    grads = net._state_grads(states, cache, net._deltas(cache))
    h = 1e-6
    for l, s in enumerate(states):
        for idx in [(0, 0), (3, s.shape[1] - 1)]:
            old = s[idx]
            s[idx] = old + h
            up = net.energy(states, X)[idx[0]]
            s[idx] = old - h
            down = net.energy(states, X)[idx[0]]
            s[idx] = old
            assert grads[l][idx] == pytest.approx((up - down) / (2 * h), rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("label_energy", ENERGIES)
def test_classifies_digits_well_above_chance(digits, label_energy):
    net = GenerativePC([digits.n_features, 32, digits.n_classes], label_energy=label_energy,
                       seed=0, steps=20)
    pk.train(net, digits.X_train, digits.y_train, algo="gpc", epochs=3, batch_size=32,
             optimizer="adam", lr=0.003, seed=0)
    accuracy = np.mean(net.predict(digits.X_test) == digits.y_test)
    assert accuracy > 0.5, accuracy  # chance is 0.1
    # the label codes generation clamps to: each class's own unit is the largest
    assert np.array_equal(np.argmax(net.label_codes, axis=1), np.arange(10))
    assert not np.allclose(net.label_codes, np.eye(10))


def test_float32_inference_stays_float32(rng):
    net = GenerativePC([6, 5, 3], dtype="float32")
    X, y = batch(rng)
    for labels in (y, None):
        result = net.infer(X, labels, steps=3)
        assert [s.dtype for s in result.states] == [np.float32, np.float32]
    assert net.generate([0, 1], noise=0.1).dtype == np.float32


def test_save_load_and_generate(tmp_path, rng):
    net = tiny("categorical")
    net.params[...] = rng.standard_normal(net.params.size)
    net.label_codes[...] = rng.standard_normal(net.label_codes.shape)
    net.save(tmp_path / "m.npz")
    back = GenerativePC.load(tmp_path / "m.npz")
    assert back.config() == net.config()
    np.testing.assert_array_equal(back.params, net.params)
    np.testing.assert_array_equal(back.label_codes, net.label_codes)
    X, _ = batch(rng)
    np.testing.assert_allclose(back.forward(X), net.forward(X))
    images = net.generate([0, 1, 2, 2])
    assert images.shape == (4, 6)
    assert not np.allclose(images, net.generate([0, 1, 2, 2], label_node="onehot"))
    np.testing.assert_array_equal(images[2], images[3])  # no noise: the MAP image
    noisy = net.generate([2, 2], noise=0.3)
    assert not np.allclose(noisy[0], noisy[1])
    pk.MLP([6, 3]).save(tmp_path / "mlp.npz")
    with pytest.raises(ValueError, match="not a generative PC model"):
        GenerativePC.load(tmp_path / "mlp.npz")
    with pytest.raises(ValueError, match="nothing.npz"):
        GenerativePC.load(tmp_path / "nothing.npz")


def test_wrong_pairs_of_model_and_algorithm(digits):
    mlp = pk.MLP([digits.n_features, 8, digits.n_classes])
    with pytest.raises(ValueError, match="GenerativePC"):
        pk.train(mlp, digits.X_train[:20], digits.y_train[:20], algo="gpc", epochs=1)
    net = GenerativePC([digits.n_features, 8, digits.n_classes])
    with pytest.raises(ValueError, match="GenerativePC"):
        pk.train(net, digits.X_train[:20], digits.y_train[:20], algo="vpc", epochs=1)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_pcclassifier_gpc_fits_and_pickles(digits):
    import pickle
    clf = pk.PCClassifier((16,), activation="tanh", algorithm="gpc", max_iter=2,
                          label_energy="categorical", steps=10, random_state=0)
    clf.fit(digits.X_train[:300], digits.y_train[:300])
    assert isinstance(clf.net_, GenerativePC)
    proba = clf.predict_proba(digits.X_test[:20])
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    back = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(back.predict(digits.X_test[:20]),
                                  clf.predict(digits.X_test[:20]))


@pytest.fixture(scope="module")
def gpc_model(tmp_path_factory):
    from click.testing import CliRunner

    from pckernels_cli.main import cli
    path = tmp_path_factory.mktemp("gpc") / "m.npz"
    result = CliRunner().invoke(cli, ["train", "--algo", "gpc", "--hidden", "16",
                                      "--epochs", "1", "--steps", "5", "--save", str(path),
                                      "--label-energy", "categorical", "-q"])
    assert result.exit_code == 0, result.output
    return path


def test_cli_generate_writes_a_png(run, gpc_model, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "grid.png"
    result = run("generate", gpc_model, "--out", out, "--samples", "3")
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image
    image = matplotlib.image.imread(out)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 50


def test_cli_eval_and_predict_read_a_gpc_model(run, gpc_model, tmp_path):
    result = run("eval", gpc_model)
    assert result.exit_code == 0, result.output
    assert "generative PC (categorical label)" in result.output
    np.savez(tmp_path / "x.npz", X=np.zeros((3, 64)))
    result = run("predict", gpc_model, tmp_path / "x.npz", "--out", tmp_path / "p.npz")
    assert result.exit_code == 0, result.output
    with np.load(tmp_path / "p.npz") as f:
        assert f["classes"].shape == (3,)
        np.testing.assert_allclose(f["probabilities"].sum(axis=1), 1)


def test_cli_errors_are_clean(run, gpc_model, tmp_path):
    mlp = tmp_path / "mlp.npz"
    pk.MLP([64, 4, 10]).save(mlp)
    clean_error(run("generate", mlp, "--out", tmp_path / "g.png"), 1,
                "not a generative PC model")
    clean_error(run("generate", tmp_path / "missing.npz", "--out", tmp_path / "g.png"), 1,
                "no such file")
    clean_error(run("generate", gpc_model, "--out", tmp_path / "g.xyz"), 2, "extension")
    clean_error(run("train", "--resume", gpc_model, "--epochs", "2"), 1,
                "generative PC model", "cannot be resumed")
    clean_error(run("train", "--algo", "gpc", "--cosine"), 2, "--cosine")
    clean_error(run("train", "--algo", "gpc", "--param", "mupc"), 2, "--param")
    clean_error(run("train", "--algo", "gpc", "--label-energy", "poisson"), 2,
                "--label-energy")
    result = run("train", "--label-energy", "categorical", "--dataset", tmp_path / "no.npz")
    assert result.exit_code != 0
    assert "warning: --label-energy does not apply to --algo bp" in result.output
