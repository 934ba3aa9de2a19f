"""Shared test settings: hypothesis profiles for the property and fuzz suites.

    python -m pytest                                         # "ci": quick, runs in CI
    python -m pytest tests/test_fuzz.py --hypothesis-profile=deep   # 10,000 cases per property
"""

from __future__ import annotations

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
