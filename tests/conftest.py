"""Shared pytest fixtures. Tests run offline: nothing is fetched from a model hub."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--hostile-dir", default=None, help="directory of hostile programs (tests/test_sandbox_hostile.py)")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny random Llama model + tokenizer with a chat template, built once per session (~5 s)."""
    from s3ft.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="session")
def taught_model(tmp_path_factory):
    """A tiny model taught (offline, a few hundred rows of its own house-style answers) so that its answers
    are right for some questions and wrong for others: every kind of training target occurs."""
    from s3ft.tiny import build_tiny_model, teach, teaching_rows

    path = build_tiny_model(tmp_path_factory.mktemp("taught"), hidden_size=64, num_layers=2)
    return teach(path, teaching_rows(limit_train=16, limit_test=8), steps=120, lr=5e-3)
