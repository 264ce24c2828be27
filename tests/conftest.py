"""Shared fixtures: tiny LLaDA models and tokenizers made on the spot (no hub, no downloads)."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # nothing in the test suite may reach a hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest
import torch

from mdlm_viz import LLaDAConfig, LLaDAModelLM
from mdlm_viz.testing import make_tiny_checkpoint

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture
def tiny_model():
    torch.manual_seed(0)
    # A larger init makes logits peaked, so argmax decisions are far from ties.
    return LLaDAModelLM(LLaDAConfig.small(vocab_size=300, init_std=0.3)).eval()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt"))


@pytest.fixture(scope="session")
def tiny_ctc_checkpoint(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt_ctc"), slack=True, collapse="standard")


@pytest.fixture(scope="session")
def app_url(tmp_path_factory):
    """`python app.py` serving three tiny checkpoints (base, ce, ctc) on loopback, shared by the
    app and browser tests."""
    from scripts.app_server import running_app, tiny_model_specs

    work = tmp_path_factory.mktemp("app")
    with running_app(tiny_model_specs(work), log_path=work / "app.log") as url:
        yield url
