"""Fixtures shared by the tests of jscan.core (on top of tests/conftest.py)."""

import contextlib

import jax.monitoring
import pytest


@contextlib.contextmanager
def _count_compiles():
    """The XLA backend compilations inside the block, as a list that grows."""
    seen = []

    def listener(name, duration, **kwargs):
        if name == "/jax/core/compile/backend_compile_duration":
            seen.append(name)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield seen
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


@pytest.fixture(scope="session")
def count_compiles():
    """count_compiles() -> a context manager that yields the list of XLA backend
    compilations made inside its block (empty: nothing compiled)."""
    return _count_compiles
