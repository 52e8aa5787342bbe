"""Shared fixtures and helpers for the engine tests (kernels, backprop, model, training, CLI)."""
import numpy as np
import pytest


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits, split as ``pckernels.load_dataset("digits")`` does."""
    from pckernels.data import load_dataset
    return load_dataset("digits")


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def run(monkeypatch, tmp_path):
    """Invoke ``pck`` with arguments in an empty working directory; no env data dirs.

    Returns click's ``Result`` (exceptions caught, as the command line would).
    """
    from click.testing import CliRunner

    from pckernels_cli.main import cli
    monkeypatch.delenv("PCK_DATA_DIR", raising=False)
    monkeypatch.delenv("PCK_MAX_MEMORY", raising=False)
    monkeypatch.chdir(tmp_path)

    def invoke(*args):
        return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=True)
    return invoke
