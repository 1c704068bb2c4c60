"""Fixtures that start the real waggle binary on free loopback ports and always stop it.

Every waggle a test starts is stopped at teardown with SIGTERM, must exit 0 within 10 s, and
must not have printed any registered secret; whatever happens, the process is killed.
"""

import pytest

from helpers import WaggleFactory


@pytest.fixture
def waggle_factory(tmp_path):
    factory = WaggleFactory(tmp_path)
    yield factory
    factory.teardown()


@pytest.fixture
def waggle(waggle_factory):
    """A fresh waggle with the default test config and an empty store."""
    return waggle_factory()
