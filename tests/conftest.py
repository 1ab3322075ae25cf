"""Shared pytest fixtures. Tests run offline: nothing is fetched from a model hub."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HANG_GUARD_S = 3600
"""The limit on a command or call a test waits for: a guard against a hang, never a speed check (no test may fail
only because the machine is slow or busy; on a loaded 2-core machine the suite has taken an hour)."""


INTEGRATION = {
    "test_e2e.py", "test_paths.py", "test_paths_user.py", "test_demo.py", "test_examples.py", "test_kill.py", "test_shards.py",
    "test_train.py", "test_harness.py", "test_backend_process.py", "test_sandbox_hostile.py",
    "test_sandbox_benign.py", "test_humaneval.py", "test_audit.py",
}
"""Test files of the `integration` kind: they drive the real CLI, the pipeline, training, several processes or the
sandbox over whole suites of programs. Every other test is a `unit` test (`make test-unit`: under 2 minutes on 2
cores). The tests of the world's research code (`tests/research/`) are integration tests too."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test `unit` or `integration` by its kind (`INTEGRATION`; a test using the session's taught model
    trains, so it is an integration test wherever it is)."""
    for item in items:
        slow_kind = (item.path.name in INTEGRATION or item.path.parent.name == "research"
                     or "taught_model" in getattr(item, "fixturenames", ()))
        if item.get_closest_marker("integration") is None and item.get_closest_marker("unit") is None:
            item.add_marker(pytest.mark.integration if slow_kind else pytest.mark.unit)


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
