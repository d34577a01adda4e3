"""Open311 GeoReport v2 at the portal: the catalogue as services, a request round-trips through the real broker
into a case, and bad input answers in the specification's error format."""
import requests

from tests.support import TOWN_A, VALID_ID, VALID_PHONE, wait_for

V2 = "/open311/v2"


def test_services_a_request_into_a_case_and_its_status(city):
    city.start("portal", f"intake-{TOWN_A}", "approval-minzheng")
    portal = city.url("portal") + V2
    services = requests.get(f"{portal}/services.json", timeout=30)
    assert services.status_code == 200 and services.headers["Content-Type"].startswith("application/json")
    by_code = {s["service_code"]: s for s in services.json()}
    assert by_code["MZ-0001"]["group"] == "民政" and by_code["MZ-0001"]["type"] == "realtime"
    assert set(by_code["MZ-0001"]) == {"service_code", "service_name", "description", "metadata", "type",
                                       "keywords", "group"}
    definition = requests.get(f"{portal}/services/MZ-0001.json", timeout=30).json()
    materials = next(a for a in definition["attributes"] if a["code"] == "materials")
    assert {v["key"] for v in materials["values"]} == {"idcard", "photo"}

    # a kiosk files a request with a clerk's API token of town A (form-encoded, api_key as an argument)
    key = city.token("clerk", f"town:{TOWN_A}", "kiosk-1")
    form = {"api_key": key, "service_code": "MZ-0001", "first_name": "三", "last_name": "张", "phone": VALID_PHONE,
            "attribute[id_number]": VALID_ID, "attribute[materials][]": ["idcard", "photo"]}
    r = requests.post(f"{portal}/requests.json", data=form, timeout=30)
    assert r.status_code == 201, r.text
    [answer] = r.json()
    number = answer["service_request_id"]
    assert number.startswith(TOWN_A) and number in answer["service_notice"]

    # through the broker: the department decides it, the request is closed
    def status():
        [request] = requests.get(f"{portal}/requests/{number}.json", params={"api_key": key}, timeout=30).json()
        return request
    closed = wait_for(lambda: status()["status"] == "closed" and status(), what="the request closed")
    assert closed["service_code"] == "MZ-0001" and closed["service_name"] and closed["requested_datetime"]
    assert closed["updated_datetime"] >= closed["requested_datetime"] and closed["agency_responsible"] == "民政"
    assert "张" not in str(closed) and VALID_PHONE[-4:] not in str(closed)
    # another town's key: as for a request that does not exist
    other = city.token("clerk", "town:320583102", "kiosk-2")
    assert requests.get(f"{portal}/requests/{number}.json", params={"api_key": other}, timeout=30).status_code == 404
    case = city.case(number)
    assert case["item_code"] == "MZ-0001" and case["status"] == "completed"

    # JSON with a Bearer header works the same
    r = requests.post(f"{portal}/requests.json", headers={"Authorization": f"Bearer {key}"}, timeout=30, json={
        "service_code": "MZ-0001", "first_name": "四", "last_name": "李", "phone": VALID_PHONE,
        "attribute": {"id_number": VALID_ID, "materials": ["idcard"]}})
    assert r.status_code == 201, r.text
    assert city.case(r.json()[0]["service_request_id"])["status"] == "pending_materials"


def test_bad_input_answers_in_the_specifications_error_format(city):
    city.start("portal", f"intake-{TOWN_A}")
    portal = city.url("portal") + V2
    key = city.token("clerk", f"town:{TOWN_A}", "kiosk-1")
    good = {"api_key": key, "service_code": "MZ-0001", "first_name": "三", "last_name": "张", "phone": VALID_PHONE,
            "attribute[id_number]": VALID_ID}

    def error(r, status):
        assert r.status_code == status, r.text
        [e] = r.json()
        assert e["code"] == status and e["description"]
        return e["description"]

    error(requests.get(f"{portal}/services/NOPE-1.json", timeout=30), 404)
    assert "service_code" in error(requests.post(f"{portal}/requests.json", timeout=30,
                                                 data={**good, "service_code": ""}), 400)
    assert "phone" in error(requests.post(f"{portal}/requests.json", timeout=30, data={**good, "phone": ""}), 400)
    bad_id = {**good, "attribute[id_number]": "110105194912310021"}  # a wrong check digit: the window's 400
    assert "id_number" in error(requests.post(f"{portal}/requests.json", timeout=30, data=bad_id), 400)
    error(requests.post(f"{portal}/requests.json", timeout=30, data={**good, "api_key": "forged"}), 403)
    error(requests.post(f"{portal}/requests.json", timeout=30, data={k: v for k, v in good.items() if k != "api_key"}),
          403)
    approver = city.token("approver", "department:minzheng", "a-1")
    error(requests.post(f"{portal}/requests.json", timeout=30, data={**good, "api_key": approver}), 403)
    error(requests.post(f"{portal}/requests.json", timeout=30, data="{not json",
                        headers={"Content-Type": "application/json"}), 400)
    kiosk = city.token("clerk", f"town:{TOWN_A}", "kiosk-1")
    error(requests.get(f"{portal}/requests/{TOWN_A}-20200101-09999.json", params={"api_key": kiosk}, timeout=30), 404)
    error(requests.get(f"{portal}/requests/nothing.json", params={"api_key": kiosk}, timeout=30), 404)
    error(requests.get(f"{portal}/requests/{TOWN_A}-20200101-09999.json", timeout=30), 403)  # no api_key
