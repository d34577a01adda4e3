"""The catalogue and the calendar as replicated records on the reference stream (shared.reference):
loaded through the CLI while services run, kept by every instance in its own database, caught up by a
new or restarted instance by itself, with no file."""
from __future__ import annotations

import subprocess
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
import yaml

from shared.catalog import SAMPLE_CATALOG
from shared.clock import ManualClock
from shared.reference import CATALOG, StreamClient, stream_name
from tests.support import TOWN_A, TOWN_B, wait_for

SAMPLE = yaml.safe_load(SAMPLE_CATALOG.read_text(encoding="utf-8"))


def _catalogue(tmp_path, version: str, town_name: str = None, phone: str = None):
    """The sample under another version, optionally with town A renamed and another supervision phone."""
    data = dict(SAMPLE, version=version)
    data["towns"] = [dict(t, name=town_name) if town_name and t["code"] == TOWN_A else t for t in SAMPLE["towns"]]
    if phone:
        data["supervision_phone"] = phone
    path = tmp_path / f"catalog-{version}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _active(city, instance: str):
    r = city.call("GET", instance, "/catalog", city.token("clerk", "city"))
    return r.json().get("version") if r.status_code == 200 else r.status_code


def _stored(city, instance: str) -> list[tuple[str, str]]:
    engine = sa.create_engine(city.settings(instance).db_url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(
                "SELECT kind, version FROM reference_records ORDER BY stream_offset"))]
    finally:
        engine.dispose()


def test_a_catalogue_loaded_while_two_intakes_run_reaches_both_survives_restarts_and_a_later_intake(
        any_city, tmp_path):
    city = any_city
    a, b = f"intake-{TOWN_A}", f"intake-{TOWN_B}"
    city.start(a, b)
    assert _active(city, a) == _active(city, b) == "2026.1"  # the sample, published by the bus set-up step
    city.load_catalog(_catalogue(tmp_path, "2026.7"))
    wait_for(lambda: _active(city, a) == _active(city, b) == "2026.7", what="the new version active in both")
    assert _stored(city, a) == [("catalog", "2026.1"), ("catalog", "2026.7")]

    # restarted with empty storage (new SQLite files / databases): caught up from the stream alone
    for instance in (a, b):
        city.stop(instance)
        city.forget_storage(instance)
        assert not _stored_or_none(city, instance)
    city.start(a, b)
    assert _active(city, a) == _active(city, b) == "2026.7"
    assert _stored(city, b) == [("catalog", "2026.1"), ("catalog", "2026.7")]
    # a case is accepted under it
    assert city.submit("MZ-0001").json()["catalog_version"] == "2026.7"

    # a third intake started later gets it
    c = city.add_intake("320583103")
    city.start(c)
    assert _active(city, c) == "2026.7"
    assert city.call("GET", c, "/health").json()["checks"]["reference"] == "ok"


def _stored_or_none(city, instance):
    try:
        return _stored(city, instance)
    except sa.exc.SQLAlchemyError:
        return None  # no database yet


def test_an_old_cases_notice_rerenders_from_its_own_version(city, tmp_path):
    city.start(f"intake-{TOWN_A}")
    clerk = city.token("clerk", f"town:{TOWN_A}")
    number = city.submit("RS-0001", materials=[]).json()["case_number"]  # incomplete: a one-time notice
    notice = city.case(number)["notices"][0]["id"]
    path = f"/cases/{number}/notices/{notice}.pdf"
    before = _pdf_text(city.call("GET", f"intake-{TOWN_A}", path, clerk).content)

    city.load_catalog(_catalogue(tmp_path, "2026.8", town_name="新名镇", phone="0512-99999999"))
    wait_for(lambda: _active(city, f"intake-{TOWN_A}") == "2026.8", what="2026.8 active")
    newer = city.submit("RS-0001", materials=[]).json()["case_number"]
    assert "0512-99999999" in _pdf_text(city.call(
        "GET", f"intake-{TOWN_A}", f"/cases/{newer}/notices/{city.case(newer)['notices'][0]['id']}.pdf", clerk).content)

    r = city.call("GET", f"intake-{TOWN_A}", path, clerk)
    assert r.status_code == 200
    again = _pdf_text(r.content)
    assert again == before, "the old case's notice is rendered from its own catalogue version"
    assert "0512-99999999" not in again and "新名镇" not in again
    assert city.case(number)["catalog_version"] == "2026.1"


def _pdf_text(pdf: bytes) -> str:
    return subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True).stdout.decode()


@pytest.mark.full  # long
def test_loading_the_same_file_twice_is_one_version(city, tmp_path):
    city.start(f"intake-{TOWN_A}")
    path = _catalogue(tmp_path, "2026.9")
    city.load_catalog(path)
    again = city.tongban("catalog", "load", str(path))
    assert "already loaded (same content), nothing published" in again.stdout
    # the same version with other content is refused with a clear message
    (tmp_path / "changed").mkdir()
    changed = _catalogue(tmp_path / "changed", "2026.9", phone="0512-1")
    refused = city.tongban("catalog", "load", str(changed), check=False)
    assert refused.returncode == 2 and "already loaded with other content" in refused.stderr
    records = StreamClient(city.amqp_url, city.prefix).read()
    assert [(r.kind, r.version) for r in records] == [(CATALOG, "2026.1"), (CATALOG, "2026.9")]
    wait_for(lambda: _active(city, f"intake-{TOWN_A}") == "2026.9", what="2026.9 active")
    assert _stored(city, f"intake-{TOWN_A}") == [("catalog", "2026.1"), ("catalog", "2026.9")]
    versions = city.tongban("catalog", "versions").stdout.splitlines()
    assert [line.split()[-1] for line in versions if line.startswith("*")] == ["(active)"]
    assert versions[-1].startswith("* 2026.9")


def test_a_2027_holiday_file_loaded_through_the_cli_moves_a_provisional_deadline(city):
    clock = ManualClock(datetime(2027, 2, 3, 1, 0, tzinfo=UTC))  # Wednesday 3 Feb 2027
    city.start(f"intake-{TOWN_A}", build={"clock": clock})
    case = city.submit("RS-0001").json()
    assert case["deadline_provisional"] is True and case["deadline"] == "2027-02-10"  # weekends only
    city.load_calendar("shared/data/holidays/2027.yaml")
    after = wait_for(lambda: (c := city.case(case["case_number"]))["deadline_provisional"] is False and c,
                     what="deadline recounted in the running intake")
    assert after["deadline"] == "2027-02-18"  # the sample 2027 Spring Festival holiday (Feb 5-13) is skipped
    assert after["history"][-1]["action"] == "recompute_deadline"
    # an intake started afterwards counts on the loaded year from the start
    city.start(f"intake-{TOWN_B}", build={"clock": clock})
    other = city.submit("RS-0001", town=TOWN_B).json()
    assert other["deadline_provisional"] is False and other["deadline"] == "2027-02-18"


def test_no_catalogue_is_said_plainly_not_served_from_a_file(city, tmp_path):
    city.ensure_users()
    with __import__("kombu").Connection(city.amqp_url) as conn:  # a deployment whose stream holds no catalogue
        conn.default_channel.queue_delete(stream_name(city.prefix))
    a = f"intake-{TOWN_A}"
    city.start(a)
    health = wait_for(lambda: (h := city.call("GET", a, "/health")).status_code == 503 and h.json(),
                      what="degraded health")
    assert health["checks"]["reference"].startswith("error: no catalogue")
    r = city.submit("MZ-0001")
    assert r.status_code == 503 and "no item catalogue" in r.json()["message"]
    city.load_catalog(_catalogue(tmp_path, "2026.5"))
    wait_for(lambda: city.call("GET", a, "/health").status_code == 200, what="healthy once a catalogue arrives")
    assert city.submit("MZ-0001").status_code == 201
