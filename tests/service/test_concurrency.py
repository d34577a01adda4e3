"""Concurrent requests at one window: the day's first cases and one Idempotency-Key sent many times at once."""
from collections import Counter

import eventlet
import pytest
import requests

from tests.support import TOWN_A, VALID_ID, VALID_PHONE

INTAKE = f"intake-{TOWN_A}"
N = 16


@pytest.fixture
def window(any_city):
    """any_city (which removes every queue of its bus afterwards, each quorum queue holding file handles)."""
    yield any_city


def _body() -> dict:
    return {"item_code": "MZ-0001", "materials": ["idcard", "photo"],
            "applicant": {"name": "张三", "id_number": VALID_ID, "phone": VALID_PHONE}}


def _submit_all(city, headers_of) -> list[requests.Response]:
    """POST /cases N times at once, each from its own green thread with its own connection."""
    url = city.url(INTAKE) + "/cases"
    token = city.token("clerk", f"town:{TOWN_A}", "clerk-1")
    gate = eventlet.event.Event()  # release every request together

    def one(i: int) -> requests.Response:
        with requests.Session() as session:
            gate.wait()
            return session.post(url, json=_body(), timeout=60,
                                headers={"Authorization": f"Bearer {token}", **headers_of(i)})

    pool = eventlet.GreenPool(N)
    running = [pool.spawn(one, i) for i in range(N)]
    eventlet.sleep(0)
    gate.send(True)
    return [g.wait() for g in running]


def test_the_days_first_cases_at_once_each_get_their_own_number(window):
    city = window
    city.start(INTAKE)  # a fresh database: these are the first cases of the day
    responses = _submit_all(city, lambda i: {})
    assert [r.status_code for r in responses] == [201] * N, Counter(r.status_code for r in responses)
    numbers = [r.json()["case_number"] for r in responses]
    assert len(set(numbers)) == N, numbers
    assert sorted(int(n.rsplit("-", 1)[1]) for n in numbers) == list(range(1, N + 1)), numbers
    assert city.stats(INTAKE)["cases"] == N


def test_one_idempotency_key_sent_at_once_opens_one_case(window):
    city = window
    city.start(INTAKE)
    responses = _submit_all(city, lambda i: {"Idempotency-Key": "counter-7-ticket-42"})
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * (N - 1) + [201], Counter(codes)
    numbers = {r.json()["case_number"] for r in responses}
    assert len(numbers) == 1, numbers
    assert city.stats(INTAKE)["cases"] == 1
