"""Fixtures of the run's tests."""

import pytest


@pytest.fixture(scope="session")
def refused():
    """refused(code, err, key): the command exited 2 with one line, ``jscan: error: ...``,
    naming ``key``, and no traceback."""

    def check(code, err, key):
        assert code == 2, err
        assert err.startswith("jscan: error:") and err.count("\n") == 1, err
        assert key in err and "Traceback" not in err, err

    return check
