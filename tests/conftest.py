"""Fixtures: the real RabbitMQ and PostgreSQL (no fakes), a throw-away city per test."""
from __future__ import annotations

import eventlet

# nameko runs on eventlet: patch before anything opens a socket (its pytest plugin no longer does)
eventlet.monkey_patch()

import os

import pytest

# the test cities run with the development secrets: development mode must be explicit (shared.config)
os.environ.setdefault("TONGBAN_DEV", "1")

from tests.support import City, PostgresDatabases, sweep_stale_test_buses, wait_for_removals

AMQP_URL = os.environ.get("TONGBAN_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
PG_URL = os.environ.get("TONGBAN_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def amqp_url():
    return AMQP_URL


@pytest.fixture(scope="session", autouse=True)
def _no_stale_test_buses():
    """A killed earlier run may have left its queues behind: sweep them before this one starts; at the
    end, wait for the cities' buses still being removed."""
    sweep_stale_test_buses(AMQP_URL)
    yield
    wait_for_removals()


@pytest.fixture(scope="session")
def postgres():
    dbs = PostgresDatabases(PG_URL)
    yield dbs
    dbs.drop_all()


def _city(tmp_path, backend, postgres_dbs):
    city = City(amqp_url=AMQP_URL, data_dir=tmp_path / "data", backend=backend, postgres=postgres_dbs)
    return city


@pytest.fixture
def city(tmp_path, postgres):
    """A city on SQLite (the embedded default)."""
    c = _city(tmp_path, "sqlite", None)
    yield c
    c.close()


@pytest.fixture(params=["sqlite", "postgres"])
def any_city(request, tmp_path, postgres):
    """The same test on SQLite and on PostgreSQL."""
    c = _city(tmp_path, request.param, postgres if request.param == "postgres" else None)
    yield c
    c.close()


# --- the CI set and the full set ---------------------------------------------------------------------
# `./run tests` (CI) runs the CI set; long runs are marked `full` and join with `./run tests --full`
# (or TONGBAN_FULL_TESTS=1): the full chaos run, the deeper fuzzing, the slow end-to-end variants.

def pytest_addoption(parser):
    parser.addoption("--full", action="store_true", default=False,
                     help="also run the long tests marked `full` (the CI set leaves them out)")
    parser.addoption("--chaos", choices=("include", "skip", "only"), default="include",
                     help="the chaos runs (marked `chaos`): last (include), left out (skip), or alone (only); "
                          "./run tests runs the rest in parallel, then them alone")


def _full_run(config) -> bool:
    return config.getoption("--full") or os.environ.get("TONGBAN_FULL_TESTS") == "1"


def pytest_collection_modifyitems(config, items):
    # the chaos runs restart this machine's RabbitMQ and PostgreSQL: after everything else, or apart
    chaos = config.getoption("--chaos")
    if chaos != "include":
        keep = [item for item in items if ("chaos" in item.keywords) == (chaos == "only")]
        kept = set(map(id, keep))
        config.hook.pytest_deselected(items=[item for item in items if id(item) not in kept])
        items[:] = keep
    items.sort(key=lambda item: "chaos" in item.keywords)
    if _full_run(config):
        return
    skip = pytest.mark.skip(reason="long: runs with ./run tests --full")
    for item in items:
        # a test on both databases (any_city) keeps its PostgreSQL run in CI; SQLite, the default, is what
        # every other test runs on
        on_sqlite_twice = getattr(item, "callspec", None) and item.callspec.params.get("any_city") == "sqlite"
        if "full" in item.keywords or on_sqlite_twice:
            item.add_marker(skip)
