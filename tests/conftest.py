"""Shared test settings: hypothesis profiles for the property and fuzz suites.

    python -m pytest                                         # "ci": quick, runs in CI
    python -m pytest tests/test_fuzz.py --hypothesis-profile=deep   # 10,000 cases per property
"""

from __future__ import annotations

import itertools
import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.register_profile(
    "deep", max_examples=10_000, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much], print_blob=True,
)
settings.load_profile(os.environ.get("JACLI_HYPOTHESIS_PROFILE", "ci"))


import pytest


_tests_run = itertools.count()


@pytest.fixture(scope="session", autouse=True)
def _no_history_outside_the_session(tmp_path_factory):
    """The same for what runs outside any one test (a module's set-up fixture runs jacli too)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache" / "session"))
        yield


@pytest.fixture(autouse=True)
def _history_in_a_temporary_folder(tmp_path_factory, monkeypatch):
    """Every test starts with no last problem, in a cache folder of its own under the session's
    temporary folder (made only if a run writes there), never in the cache of the person who
    runs the tests: in-process runs and subprocesses alike."""
    folder = tmp_path_factory.getbasetemp() / "cache" / str(next(_tests_run))
    monkeypatch.setenv("XDG_CACHE_HOME", str(folder))
    monkeypatch.delenv("JACLI_NO_HISTORY", raising=False)
