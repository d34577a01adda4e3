"""全城通办 rules without a broker: the delivery choice, S10 waybill numbers, who hears of a case, each
centre's responsibility, and the result notice naming the waybill or the centre."""
from datetime import date
from pathlib import Path

import pytest

from services.intake import domain, views
from services.intake.notice_rendering import render_pdf, render_sms
from services.intake.service import VERSIONS
from services.intake.usecases import Window
from shared import s10
from shared.catalog import SAMPLE_CATALOG, load_catalog
from shared.clock import ManualClock
from shared.contracts import Unacceptable, make_message
from shared.errors import NotVisible, RuleViolation
from shared.reference import Book, Catalogs, make_record
from shared.store import Store
from shared.workdays import WorkingCalendar
from tests.unit.test_notices import make, pdf_text, squeeze
from tests.unit.test_window_usecases import APPLICANT, MONDAY, TOWN, _sent, _step, _who

CATALOG = load_catalog()
MAIL_OK = CATALOG.item("MZ-0002")  # delivery: [pickup, mail]
PICKUP_ONLY = CATALOG.item("TY-0002")  # delivery: [pickup]
A, B = "320583101", "320583102"


# --- delivery -------------------------------------------------------------------------------------

def test_delivery_defaults_to_pickup_and_keeps_no_address():
    assert domain.delivery_choice(MAIL_OK, None, "sms", None) == ("pickup", None)
    assert domain.delivery_choice(MAIL_OK, "pickup", "sms", "江苏省昆山市前进路1号") == ("pickup", None)


def test_an_item_mailed_only_defaults_to_mail_and_so_needs_the_address():
    mail_only = {**MAIL_OK, "delivery": ["mail"]}
    assert domain.delivery_choice(mail_only, None, "sms", "巴城镇正仪路8号") == ("mail", "巴城镇正仪路8号")
    with pytest.raises(RuleViolation) as exc:
        domain.delivery_choice(mail_only, None, "sms", None)
    assert "mail_address" in exc.value.details


def test_mail_needs_an_address_and_keeps_it():
    address = "江苏省昆山市前进路1号"
    assert domain.delivery_choice(MAIL_OK, "mail", "sms", f" {address} ") == ("mail", address)
    with pytest.raises(RuleViolation) as exc:
        domain.delivery_choice(MAIL_OK, "mail", "sms", "  ")
    assert "mail_address" in exc.value.details


def test_the_old_channels_still_choose_the_delivery():
    assert domain.delivery_choice(MAIL_OK, None, "mail", "江苏省昆山市前进路1号") == ("mail", "江苏省昆山市前进路1号")
    assert domain.delivery_choice(MAIL_OK, None, "pickup", None) == ("pickup", None)
    with pytest.raises(RuleViolation):
        domain.delivery_choice(MAIL_OK, None, "mail", None)  # channel mail: delivery mail, which needs an address
    with pytest.raises(RuleViolation) as exc:
        domain.delivery_choice(MAIL_OK, "pickup", "mail", "江苏省昆山市前进路1号")
    assert "delivery" in exc.value.details


def test_a_delivery_the_catalogue_does_not_offer_is_refused_saying_what_is():
    assert PICKUP_ONLY["delivery"] == ["pickup"]
    with pytest.raises(RuleViolation) as exc:
        domain.delivery_choice(PICKUP_ONLY, "mail", "sms", "江苏省昆山市前进路1号")
    assert "pickup" in exc.value.message and exc.value.details == {"delivery": ["offered: pickup"]}


def test_a_waybill_is_owed_for_an_approved_result_sent_by_mail_only():
    assert domain.waybill_owed("mail", "approved")
    assert not domain.waybill_owed("mail", "refused")
    assert not domain.waybill_owed("pickup", "approved")
    assert not domain.waybill_owed(None, "approved")


# --- S10 -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("number", ["RR473124829GB", "EB000717618HK", "EB000717595HK", "RB123456785GB"])
def test_known_s10_numbers_are_valid(number):
    assert s10.is_valid(number)
    assert s10.tracking_number(number[:2], int(number[2:10]), number[-2:]) == number


@pytest.mark.parametrize("number", ["RR473124828GB", "EB000717594HK", "EB900717618HK", "RA184717615H1",
                                    "1847176155123", "", "rr473124829gb", "RR4731248290GB"])
def test_wrong_s10_numbers_are_not(number):
    assert not s10.is_valid(number)


@pytest.mark.parametrize("serial, digit", [("00071758", 1), ("96633102", 0), ("76129403", 8), ("47312482", 9)])
def test_check_digits_including_the_10_and_11_cases(serial, digit):
    assert s10.check_digit(serial) == digit


def test_the_check_digit_maps_10_to_0_and_11_to_5():
    # weighted sum ≡ 1 (mod 11) gives 10, printed 0; ≡ 0 gives 11, printed 5
    assert s10.check_digit("00000001") == 4 and s10.check_digit("00000000") == 5
    sums = {s: sum(int(d) * w for d, w in zip(f"{s:08d}", s10.WEIGHTS, strict=True)) % 11 for s in range(200)}
    ones = [s for s, r in sums.items() if r == 1]
    assert ones and all(s10.check_digit(s) == 0 for s in ones)
    assert all(s10.check_digit(s) == 5 for s, r in sums.items() if r == 0)


def test_ranges_are_read_and_used_in_order():
    ranges = s10.parse_ranges("EA10100000-10100001, EB10100000-10100000")
    first = s10.next_number(ranges, None)
    assert first == s10.tracking_number("EA", 10100000) and first.endswith("CN") and s10.is_valid(first)
    second = s10.next_number(ranges, first)
    assert second[:10] == "EA10100001"
    third = s10.next_number(ranges, second)
    assert third[:10] == "EB10100000"
    with pytest.raises(ValueError, match="configure a new range"):
        s10.next_number(ranges, third)
    for bad in ("EA1010000-10100001", "E110100000-10100001", "EA10100002-10100001", ""):
        with pytest.raises(ValueError):
            s10.parse_ranges(bad)


def test_the_default_ranges_of_two_towns_never_meet():
    numbers = {}
    for town in (A, B, "320584101"):
        ranges = s10.default_ranges(town)
        last = None
        for _ in range(3):
            last = s10.next_number(ranges, last)
            assert s10.is_valid(last)
            numbers.setdefault(last, set()).add(town)
        assert s10.next_number(ranges, ranges[0].number(ranges[0].last))[:2] == "EB"
    assert all(len(towns) == 1 for towns in numbers.values())


# --- who hears of a case, and who answers for what ---------------------------------------------------

def test_the_handling_town_hears_of_cases_it_handles_for_another_centre():
    assert domain.transfer_owed(A, B, "in_review", 1)
    assert domain.transfer_owed(A, B, "completed", 3)
    assert domain.transfer_owed(A, B, "returned", 2), "returned after acceptance: the handling centre hears it"
    assert not domain.transfer_owed(A, B, "returned", 1), "not accepted at all"
    assert not domain.transfer_owed(A, B, "consulted", 1)
    assert not domain.transfer_owed(A, A, "in_review", 1)
    assert not domain.transfer_owed(A, "city", "in_review", 1)


def test_routing_a_city_wide_item_goes_to_the_household_town_or_the_city():
    assert domain.handling_town(MAIL_OK, A, B) == B
    assert domain.handling_town({**MAIL_OK, "level": "city"}, A, B) == "city"
    with pytest.raises(RuleViolation):
        domain.check_city_wide({**MAIL_OK, "city_wide": False}, A, B)


def test_responsibilities_name_both_shares():
    office = domain.office_name(B, "民政", "巴城镇", "昆山市")
    accepting, handling = domain.responsibilities(accepting_town=A, accepting_centre="玉山镇便民服务中心",
                                                  first_responder="clerk-1", handling_town=B,
                                                  department="minzheng", office=office)
    assert accepting == {"role": "accepting", "town": A, "centre": "玉山镇便民服务中心", "first_responder": "clerk-1",
                         "duties": ["形式审查", "身份核验", "受理", "送达"]}
    assert handling == {"role": "handling", "town": B, "office": "巴城镇民政办", "department": "minzheng",
                        "scope": f"department:minzheng@{B}", "duties": ["审查决定"]}
    city = domain.responsibilities(accepting_town=A, accepting_centre="c", first_responder="f", handling_town="city",
                                   department="minzheng", office=domain.office_name("city", "民政", None, "昆山市"))[1]
    assert city["office"] == "昆山市民政局" and city["scope"] == "department:minzheng"


# --- the notices -----------------------------------------------------------------------------------------

def test_the_result_notice_carries_the_ems_waybill(tmp_path):
    number = s10.tracking_number("EA", 83101000)
    notice = make("result", delivery="mail", tracking_number=number)
    assert f"EMS运单号{number}" in render_sms(notice)
    assert f"EMS运单号{number}" in squeeze(pdf_text(render_pdf(notice), tmp_path))


def test_a_result_to_pick_up_names_the_accepting_centre(tmp_path):
    notice = make("result", delivery="pickup", pickup_place="玉山镇便民服务中心综合受理窗口")
    assert "请到玉山镇便民服务中心综合受理窗口领取" in render_sms(notice)
    assert "玉山镇便民服务中心综合受理窗口" in squeeze(pdf_text(render_pdf(notice), tmp_path))
    assert "EMS" not in render_sms(notice)
    assert "领取" not in render_sms(make("result")), "no delivery known (an older notice): as it was"


# --- the use cases on SQLite, no broker: what the accepting centre sends, what the handling one keeps -------

def _window(tmp_path, town):
    store = Store(f"sqlite:///{tmp_path / f'intake-{town}.db'}", Path(VERSIONS), "x.events")
    store.migrate()
    w = Window(town=town, instance=f"intake-{town}",
               catalogs=Catalogs(Book([make_record("catalog", SAMPLE_CATALOG.read_text("utf-8"))])),
               calendar=WorkingCalendar(), clock=ManualClock(MONDAY), work_exchange="x.work")
    w.store = store
    yield w
    store.dispose()


@pytest.fixture
def window(tmp_path):
    yield from _window(tmp_path, TOWN)


def _transfers_sent(w) -> list[dict]:
    return [body for key, body in _sent(w) if key.startswith("case.transfer.")]


def _mail(w, applicant_town=B, **extra):
    body = {"item_code": "MZ-0002", "materials": ["idcard", "hukou", "apply", "income", "consent"],
            "applicant": {**APPLICANT, "town": applicant_town}, "delivery": "mail", "mail_address": "巴城镇正仪路8号",
            **extra}
    with w.store.transaction() as tx:
        case, _ = w.submit(tx, body, _who(), None)
        return case.case_number


def test_the_accepting_centre_tells_the_handling_town_at_acceptance_and_at_every_step(window):
    local = _mail(window, applicant_town=None)
    assert _transfers_sent(window) == [], "handled here: nobody else hears of it"
    number = _mail(window)
    sent = _transfers_sent(window)
    assert [(m["case_number"], m["case_version"], m["payload"]["status"]) for m in sent] == [(number, 1, "in_review")]
    assert sent[0]["payload"]["handling_town"] == B and sent[0]["payload"]["delivery"] == "mail"
    view = _step(window, number, "pause", "现场勘察", "入户调查")
    assert _transfers_sent(window)[-1]["payload"]["status"] == "paused" and view["version"] == 2
    assert view["history"][0]["data"]["responsibilities"] == view["responsibilities"]
    with window.store.transaction() as tx:
        assert views.case_view(window, tx, window.visible_case(tx, _who(), local), with_history=True)[
            "history"][0]["data"].get("responsibilities") is None


def test_a_mailed_result_gets_the_next_waybill_of_the_centre(window):
    numbers = [_mail(window, applicant_town=None) for _ in range(2)]
    tracking = []
    for number in numbers:
        with window.store.transaction() as tx:
            window.apply_decision(tx, make_message("case.decided", number, 1, {
                "accepting_town": TOWN, "handling_town": TOWN, "department": "minzheng", "outcome": "approved",
                "result_number": "R-1", "decided_by": "approver-1", "work_item_id": 1}, producer="t"))
        with window.store.transaction() as tx:
            tracking.append(views.case_detail(window, tx, _who(), number)["waybill"]["tracking_number"])
    first = s10.default_ranges(TOWN)[0]
    assert tracking == [first.number(first.first), first.number(first.first + 1)]
    completed = [m["payload"] for key, m in _sent(window) if key.startswith("case.completed.")]
    assert [c["tracking_number"] for c in completed] == tracking and {c["delivery"] for c in completed} == {"mail"}


@pytest.fixture
def window_b(tmp_path):
    yield from _window(tmp_path, B)


def _transfer(version, status, handling_town=B):
    return make_message("case.transfer", "320583101-20261102-00001", version, {
        "accepting_town": A, "handling_town": handling_town, "item_code": "MZ-0002", "item_name": "最低生活保障申请",
        "department": "minzheng", "kind": "promised", "status": status, "deadline": date(2026, 11, 30),
        "accepted_at": MONDAY, "first_responder": "clerk-a1", "delivery": "mail"}, producer="t")


def test_the_handling_centre_keeps_the_latest_version_and_shows_it_to_its_own_town_only(window_b):
    with window_b.store.transaction() as tx:
        assert window_b.on_transfer(tx, _transfer(2, "paused")) == "ok"
    with window_b.store.transaction() as tx:
        assert window_b.on_transfer(tx, _transfer(1, "in_review")) == "stale", "an older version is ignored"
    with window_b.store.transaction() as tx, pytest.raises(Unacceptable):
        window_b.on_transfer(tx, _transfer(3, "completed", handling_town="320583103"))
    number = "320583101-20261102-00001"
    with window_b.store.transaction() as tx:
        seen = views.case_detail(window_b, tx, _who(scope=f"town:{B}"), number)
        assert seen["status"] == "paused" and seen["version"] == 2 and seen["responsibility"] == "handling"
        assert seen["accepting_centre"] == "玉山镇便民服务中心"
        assert views.transfer_list(window_b, tx, _who(scope=f"town:{B}"), {"status": "paused"})["transfers"]
        assert not views.transfer_list(window_b, tx, _who(scope=f"town:{B}"), {"status": "completed"})["transfers"]
        assert views.transfer_list(window_b, tx, _who(role="supervisor", scope="city"), {})["transfers"]
        for stranger in (_who(scope="town:320583103"), _who(scope=f"town:{A}")):
            with pytest.raises(NotVisible):
                views.case_detail(window_b, tx, stranger, number)
            with pytest.raises(NotVisible):
                views.transfer_list(window_b, tx, stranger, {})
