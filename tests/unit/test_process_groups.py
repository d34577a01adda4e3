"""`tongban up --processes N`: how the instances are grouped into processes, and what a child process is
given (its instances' settings, through a JSON spec). No processes started here: the e2e test of `up` runs
them."""
from __future__ import annotations

from pathlib import Path

import pytest

from shared.config import Settings
from tongban.process_groups import process_groups, settings_of, spec_of
from tongban.runtime import host_layout


@pytest.fixture
def layout(tmp_path):
    base = Settings(service="t", instance="t", data_dir=tmp_path, token_private_key="")
    return host_layout(base, towns=("320583101", "320583102"), departments=("minzheng", "renshe", "yibao"))


def _names(groups):
    return {name: [s.instance for s in group] for name, group in groups}


def test_one_process_holds_everything_three_hold_the_three_kinds_of_work(layout):
    assert _names(process_groups(layout, 1)) == {"all": [s.instance for s in layout]}
    three = _names(process_groups(layout, 3))
    assert three == {"front": ["portal", "intake-320583101", "intake-320583102", "agent"],
                     "approval": ["approval-minzheng", "approval-renshe", "approval-yibao"],
                     "after": ["notify", "evaluation"]}
    assert list(_names(process_groups(layout, 2))) == ["front+approval", "after"]


def test_more_processes_split_the_largest_group_and_every_instance_runs_once(layout):
    for n in range(1, 12):
        groups = process_groups(layout, n)
        instances = [s.instance for _, g in groups for s in g]
        assert sorted(instances) == sorted(s.instance for s in layout), n
        assert all(g for _, g in groups) and len(groups) == min(n, len(layout))
    assert _names(process_groups(layout, 4))["front-1"] == ["portal", "intake-320583101"]
    with pytest.raises(ValueError):
        process_groups(layout, 0)


def test_a_child_gets_the_settings_it_was_given(layout):
    spec = spec_of(layout, "INFO")
    import json
    again = settings_of(json.loads(json.dumps(spec)))
    assert again == layout and isinstance(again[0].data_dir, Path) and isinstance(again[0].retry_delays, tuple)
    assert spec["log_level"] == "INFO"
