"""The access matrix (issue 14): every HTTP endpoint of every service × every role × own / foreign scope, with
the answer it must give. Data only; tests/service/test_access_matrix.py runs all of it against one city.

Columns, the callers; each role asks once in its own scope and once in a foreign one:

    anon   an  no token: the applicant, anyone on the street
    clerk  cl  window clerk (窗口) of town A / of town B
    approv ap  approver of the row's department at its town-A office / at its town-B office
    o_dept ao  approver of another department's town-A office (the same town, not the row's department)
    head   hd  department head (科室负责人) of the same offices
    c_head ch  the head of the row's department at the city level (市级部门): a level above, not town A's office
    agent  ag  village agent (代办员) of A001 who submitted the records / the agent of A002
    t_agt  ta  town agent (镇代办员) of town A / of town B
    sup    su  supervisor (电子监察) of town A / of town B
    c_sup  cs  the city's supervisor (scope city)
    admin  ad  city IT (city_admin, scope city)
    svc    sv  a machine (the portal's own calls, the demo driver; scope city)

The portal's directory knows the same roles (every one but `service`, services/portal/directory_rules.py).
`anon`, `o_dept`, `c_head` and the city-wide callers ask in one scope only.

A cell is one answer for both scopes, or two: own then foreign ("O4": 2xx for the own, 404 for the foreign):

    O   2xx
    I   admitted: past every access check, whatever the record's state or the body makes of it (2xx, 400, 409);
        for steps whose success depends on the record's state, which earlier rows change
    H   2xx, and exactly what this caller got before town A had any record (a list or a figure must not change
        with records the caller may not see)
    1   401: no or bad credentials
    3   403: not for this role (or not for this scope, where the scope is no record: a town's window, an office)
    4   404, exactly the answer for a record that does not exist (status and body, the record's id set aside)

Rows: (service kind, "METHOD /path"), the route as /openapi.json has it; its {params} are filled with town A's
records (see test_access_matrix.records). The reads run first (then the lists again with FILTERS), then the steps
in this order, so a step that changes a record comes after the steps that need it as it was (the query code is
reissued last). QUERY and BODIES below give the rows' query strings and bodies.
"""
from __future__ import annotations

CALLERS = ("anon", "clerk", "approv", "o_dept", "head", "c_head", "agent", "t_agt", "sup", "c_sup", "admin", "svc")
ONE_SCOPE = ("anon", "o_dept", "c_head", "c_sup", "admin", "svc")
# the department whose offices the approv and head columns are, by service kind (else DEFAULT_DEPARTMENT), and
# the other one, o_dept's
DEPARTMENT = {"approval": "renshe"}
DEFAULT_DEPARTMENT = "minzheng"
OTHER_DEPARTMENT = {"renshe": "minzheng", "minzheng": "renshe"}
ANSWERS = {"O": "ok", "I": "admitted", "H": "hidden", "1": "401", "3": "403", "4": "404"}

PUBLIC = "O   O   O   O   O   O   O   O   O   O   O   O"
PUBLIC_ROUTES = ("GET /health", "GET /health/live", "GET /metrics", "GET /openapi.json")
KINDS = ("intake", "approval", "agent", "notify", "evaluation", "portal")

MATRIX: dict[tuple[str, str], str] = {
    # (kind, route)                                                   an  cl  ap  ao  hd  ch  ag  ta  su  cs  ad  sv
    # --- intake, town A's window --------------------------------------------------------------------------------
    ("intake", "GET /catalog"):                                      "1   O   O   O   O   O   O   O   O   O   O   O",
    ("intake", "GET /catalog/items/{code}"):                         "1   O   O   O   O   O   O   O   O   O   O   O",
    ("intake", "GET /cases"):                                        "1   O4  3   3   3   3   3   O4  O4  O   O   O",
    ("intake", "GET /cases/{case_number}"):                          "1   O4  3   3   3   3   3   O4  O4  O   O   O",
    ("intake", "GET /cases/{case_number}/notices/{notice_id}.pdf"):  "1   O4  3   3   3   3   3   O4  O4  O   O   O",
    ("intake", "GET /transfers"):                                    "1   O4  O4  H   O4  4   3   O4  O4  O   O   O",
    ("intake", "GET /stats"):                                        "1   3   3   3   3   3   3   3   O4  O   O   O",
    ("intake", "GET /ledger/verify"):                                "1   3   3   3   3   3   3   3   O4  O   O   O",
    ("intake", "POST /cases/{case_number}/notices/{notice_id}.pdf"): "1   O4  3   3   3   3   3   O4  O4  O   O   O",
    ("intake", "POST /public/lookup"):                               "1   3   3   3   3   3   3   3   3   3   3   O",
    ("intake", "POST /cases"):                                       "1   O3  3   3   3   3   3   3   3   3   3   O",
    ("intake", "POST /cases/{case_number}/deferred"):                "1   I4  3   3   3   3   3   3   3   3   3   I",
    ("intake", "POST /cases/{case_number}/supplement"):              "1   I4  3   3   3   3   3   3   3   3   3   I",
    ("intake", "POST /cases/{case_number}/initial-review"):          "1   I4  3   3   3   3   3   I4  3   3   3   I",
    ("intake", "POST /cases/{case_number}/pause"):                   "1   I4  3   3   I4  4   3   3   I4  I   I   I",
    ("intake", "POST /cases/{case_number}/resume"):                  "1   I4  3   3   I4  4   3   3   I4  I   I   I",
    ("intake", "POST /cases/{case_number}/extension"):               "1   3   3   3   I4  4   3   3   I4  I   I   3",
    ("intake", "POST /cases/{case_number}/return"):                  "1   I4  3   3   3   3   3   3   3   3   3   I",
    ("intake", "POST /cases/{case_number}/review"):                  "1   I4  3   3   3   3   3   3   3   3   3   I",
    ("intake", "POST /cases/{case_number}/query-code"):              "1   I4  3   3   3   3   3   3   3   3   3   I",
    # --- approval, the department's service (renshe) ------------------------------------------------------------
    ("approval", "GET /work-items"):                                 "1   3   OH  4   OH  H   3   3   4   O   O   O",
    ("approval", "GET /work-items/{item_id}"):                       "1   3   O4  4   O4  4   3   3   4   O   O   O",
    ("approval", "GET /posts"):                                      "1   3   O   4   O   O   3   3   4   O   O   O",
    ("approval", "GET /posts/{office}/handovers"):                   "1   3   O4  4   O4  4   3   3   4   O   O   O",
    ("approval", "GET /stats"):                                      "1   3   3   3   3   3   3   3   4   O   O   O",
    ("approval", "PUT /posts/{office}"):                             "1   3   3   3   I3  3   3   3   3   3   I   3",
    ("approval", "POST /posts/{office}/absences"):                   "1   3   3   3   I3  3   3   3   3   3   I   3",
    ("approval", "POST /work-items/{item_id}/claim"):                "1   3   I4  4   I4  4   3   3   3   3   3   3",
    ("approval", "POST /work-items/{item_id}/materials"):            "1   3   I4  4   I4  4   3   3   3   3   3   3",
    ("approval", "POST /work-items/{item_id}/procedure"):            "1   3   I4  4   I4  4   3   3   3   3   3   3",
    ("approval", "POST /work-items/{item_id}/procedure/end"):        "1   3   I4  4   I4  4   3   3   3   3   3   3",
    ("approval", "POST /work-items/{item_id}/extension"):            "1   3   I4  4   I4  4   3   3   3   3   3   3",
    ("approval", "POST /work-items/{item_id}/extension/approve"):    "1   3   3   3   I4  4   3   3   3   3   3   3",
    ("approval", "POST /work-items/{item_id}/decision"):             "1   3   I4  4   I4  4   3   3   3   3   3   3",
    # --- agent: village stations and town agents ----------------------------------------------------------------
    ("agent", "GET /escalations"):                                   "1   3   3   3   3   3   3   OH  OH  O   O   O",
    ("agent", "GET /escalations/{case_number}"):                     "1   3   3   3   3   3   3   O4  O4  O   O   O",
    ("agent", "GET /replies"):                                       "1   3   3   3   3   3   OH  3   OH  O   O   O",
    ("agent", "GET /station/services"):                              "1   OH  3   3   3   3   OH  OH  OH  O   O   O",
    ("agent", "GET /station/services/{number}"):                     "1   O4  3   3   3   3   O4  O4  O4  O   O   O",
    ("agent", "GET /reports/village"):                               "1   OH  3   3   3   3   OH  OH  OH  O   O   O",
    ("agent", "GET /stats"):                                         "1   3   3   3   3   3   3   3   OH  O   O   O",
    ("agent", "POST /replies/{case_number}"):                        "1   3   3   3   3   3   I4  3   3   3   3   I",
    ("agent", "POST /station/help"):                                 "1   3   3   3   3   3   O   3   3   3   3   3",
    ("agent", "POST /station/submissions"):                          "1   3   3   3   3   3   O   3   3   3   3   3",
    ("agent", "POST /escalations/{case_number}/relay"):              "1   3   3   3   3   3   3   I4  3   3   3   I",
    ("agent", "POST /escalations/{case_number}/return"):             "1   3   3   3   3   3   3   I4  3   3   3   I",
    # --- notify -------------------------------------------------------------------------------------------------
    ("notify", "GET /cases/{case_number}/deliveries"):               "1   O4  3   3   3   3   3   3   O4  O   O   O",
    ("notify", "GET /stats"):                                        "1   3   3   3   3   3   3   3   OH  O   O   O",
    # --- evaluation: events, ratings (好差评), complaints (有诉即办), supervision ---------------------------------
    ("evaluation", "GET /cases/{case_number}/events"):               "1   3   3   3   3   3   3   3   O4  O   O   O",
    ("evaluation", "GET /stats"):                                    "1   3   3   3   3   3   3   3   OH  O   O   O",
    ("evaluation", "GET /board"):                                    "1   3   3   3   OH  O   3   3   OH  O   O   O",
    ("evaluation", "GET /forecast"):                                 "1   3   3   3   OH  O   3   3   OH  O   O   O",
    ("evaluation", "GET /reports/monthly"):                          "1   3   3   3   OH  O   3   3   OH  O   O   O",
    ("evaluation", "GET /supervision/notices"):                      "1   3   3   3   OH  H   3   3   OH  O   O   O",
    ("evaluation", "GET /supervision/warnings"):                     "1   3   3   3   OH  H   3   3   OH  O   O   O",
    ("evaluation", "GET /ratings"):                                  "1   OH  OH  H   OH  H   3   3   OH  O   O   O",
    ("evaluation", "GET /ratings/{rating_id}"):                      "1   O4  O4  4   O4  4   3   3   O4  O   O   O",
    ("evaluation", "GET /rectifications"):                           "1   3   3   3   OH  H   3   3   OH  O   O   O",
    ("evaluation", "GET /appeals"):                                  "1   3   3   3   OH  H   3   3   OH  O   O   O",
    ("evaluation", "GET /complaints"):                               "1   OH  OH  H   OH  H   3   3   OH  O   O   O",
    ("evaluation", "GET /complaints/{number}"):                      "1   O4  O4  4   O4  4   3   3   O4  O   O   O",
    ("evaluation", "POST /ratings"):                                 "1   I4  3   3   3   3   3   3   3   3   3   I",
    ("evaluation", "POST /ratings/{rating_id}/follow-up"):           "1   I4  3   3   3   3   3   3   I4  I   3   I",
    ("evaluation", "POST /ratings/{rating_id}/appeal"):              "1   3   3   3   I4  4   3   3   I4  3   3   3",
    ("evaluation", "POST /appeals/{appeal_id}/decision"):            "1   3   3   3   3   3   3   3   I4  I   3   3",
    ("evaluation", "POST /rectifications/{rect_id}/callback"):       "1   3   3   3   I4  4   3   3   I4  I   3   3",
    ("evaluation", "POST /rectifications/{rect_id}/rectify"):        "1   3   3   3   I4  4   3   3   I4  I   3   3",
    ("evaluation", "POST /rectifications/{rect_id}/close"):          "1   3   3   3   I4  4   3   3   I4  I   3   3",
    ("evaluation", "POST /complaints"):                              "1   O3  3   3   3   3   3   3   O3  O   3   O",
    ("evaluation", "POST /complaints/{number}/acknowledge"):         "1   I4  3   3   3   3   3   3   I4  I   3   I",
    ("evaluation", "POST /complaints/{number}/assign"):              "1   I4  3   3   3   3   3   3   I4  I   3   I",
    ("evaluation", "POST /complaints/{number}/resolve"):             "1   34  I4  4   I4  4   3   3   I4  I   3   I",
    # --- the portal's JSON: Open311 (GeoReport v2: its refusals are 403, as the specification has them) ---------
    ("portal", "GET /open311/v2/services.json"):                     "O   O   O   O   O   O   O   O   O   O   O   O",
    ("portal", "GET /open311/v2/services/{code}.json"):              "O   O   O   O   O   O   O   O   O   O   O   O",
    ("portal", "GET /open311/v2/requests/{request_id}.json"):        "3   O4  3   3   3   3   3   3   3   3   3   O",
    ("portal", "POST /open311/v2/requests.json"):                    "3   O3  3   3   3   3   3   3   3   3   3   O",
}
for _kind in KINDS:  # every instance answers these to anyone (probes, scrapers, clients reading the document)
    for _route in PUBLIC_ROUTES:
        MATRIX[(_kind, _route)] = PUBLIC

# query strings the rows need: the reports' month is the current one, which town A's records are in
QUERY = {
    ("agent", "GET /reports/village"): "month={month}",
    ("evaluation", "GET /reports/monthly"): "month={month}",
}

# The lists again, with filters naming town A or its office: the same answers as the row's, or the answers given
# here (the city-level head names a town office not its own); where a caller's answer is H it may also be a
# refusal, 403 or 404 (naming another's town in a filter is refused: a route, not a record to hide).
#                     an  cl  ap  ao  hd  ch  ag  ta  su  cs  ad  sv
NOT_THE_CITY_HEADS = "1   3   3   3   OH  4   3   3   OH  O   O   O"  # the board: no such office of theirs
NOT_THE_CITY_HEADS_FIGURES = "1   3   3   3   OH  3   3   3   OH  O   O   O"  # the report: not a scope of theirs
FILTERS: dict[tuple[str, str], tuple[str, str | None]] = {
    ("intake", "GET /cases"): ("item_code=MZ-0001&status=completed", None),
    ("intake", "GET /transfers"): ("overdue=1", None),
    ("approval", "GET /work-items"): ("assignee=none", None),
    ("agent", "GET /escalations"): ("status=awaiting_relay", None),
    ("agent", "GET /replies"): ("status=to_reply", None),
    ("agent", "GET /reports/village"): ("month={month}&town={town}", None),
    ("evaluation", "GET /reports/monthly"): ("month={month}&town={town}&dept=minzheng",
                                              NOT_THE_CITY_HEADS_FIGURES),
    ("evaluation", "GET /ratings"): ("town={town}", None),
    ("evaluation", "GET /complaints"): ("town={town}", None),
    ("evaluation", "GET /rectifications"): ("town={town}&department=minzheng&state=all", None),
    ("evaluation", "GET /appeals"): ("town={town}&department=minzheng", None),
    ("evaluation", "GET /board"): ("town={town}&department=minzheng", NOT_THE_CITY_HEADS),
    ("evaluation", "GET /forecast"): ("town={town}&department=minzheng", NOT_THE_CITY_HEADS),
    ("evaluation", "GET /supervision/notices"): ("town={town}&department=minzheng", NOT_THE_CITY_HEADS),
    ("evaluation", "GET /supervision/warnings"): ("town={town}&department=minzheng", NOT_THE_CITY_HEADS),
}

# bodies of the rows that take one: valid, so that what answers is the access check, not the body's
# ({name} strings are filled like the path's parameters)
AUTHORISATION = {"by": "李四", "matters": "代为申请社会保险登记", "signed_at": "2026-11-24T09:00:00+08:00",
                 "method": "手写签名"}
REASON = {"reason": "核实情况"}
BODIES = {
    ("intake", "POST /cases/{case_number}/notices/{notice_id}.pdf"): {"query_code": "{query_code}"},
    ("intake", "POST /public/lookup"): {"case_number": "{case_number}", "query_code": "{query_code}"},
    ("intake", "POST /cases"): {"item_code": "MZ-0001", "materials": ["idcard", "photo"],
                                "applicant": {"name": "张三", "id_number": "{id_number}", "phone": "{phone}"}},
    ("intake", "POST /cases/{case_number}/deferred"): {"materials": ["photo"]},
    ("intake", "POST /cases/{case_number}/supplement"): {"materials": ["photo"]},
    ("intake", "POST /cases/{case_number}/pause"): {"procedure": "现场勘察", "reason": "核实经营场所"},
    ("intake", "POST /cases/{case_number}/extension"): {"days": 2, "reason": "需征求意见"},
    ("intake", "POST /cases/{case_number}/return"): REASON,
    ("intake", "POST /cases/{case_number}/review"): REASON,
    ("approval", "PUT /posts/{office}"): {"a": "zhang", "b": "li"},
    ("approval", "POST /posts/{office}/absences"): {"holder": "zhang", "from": "2026-12-01T09:00:00+08:00",
                                                    "to": "2026-12-02T09:00:00+08:00", "reason": "培训"},
    ("approval", "POST /work-items/{item_id}/materials"): {"materials": [{"code": "form", "name": "申请表"}],
                                                             "reason": "表格缺签字"},
    ("approval", "POST /work-items/{item_id}/procedure"): {"procedure": "听证", "reason": "听证"},
    ("approval", "POST /work-items/{item_id}/procedure/end"): REASON,
    ("approval", "POST /work-items/{item_id}/extension"): {"days": 2, "reason": "需征求意见"},
    ("approval", "POST /work-items/{item_id}/decision"): {"outcome": "approved"},
    ("agent", "POST /replies/{case_number}"): {"method": "phone", "what_said": "已办结，请留意短信"},
    ("agent", "POST /station/help"): {"content": "咨询", "solution": "已解答",
                                      "applicant": {"name": "张三", "phone": "{phone}"}},
    ("agent", "POST /station/submissions"): {"item_code": "RS-0001", "materials": ["idcard", "form"],
                                             "authorisation": AUTHORISATION,
                                             "applicant": {"name": "李四", "id_number": "{id_number}",
                                                           "phone": "{phone}"}},
    ("evaluation", "POST /ratings"): {"case_number": "{case_number}", "level": 1, "channel": "{rating_channel}",
                                      "stage": "completion"},
    ("evaluation", "POST /ratings/{rating_id}/follow-up"): {"level": 2, "channel": "{follow_channel}"},
    ("evaluation", "POST /ratings/{rating_id}/appeal"): {"reason": "评价器误触"},
    ("evaluation", "POST /appeals/{appeal_id}/decision"): {"outcome": "rejected", "reason": "评价属实"},
    ("evaluation", "POST /rectifications/{rect_id}/callback"): {"by": "李监察", "notes": "已回访"},
    ("evaluation", "POST /rectifications/{rect_id}/rectify"): {"measures": "增加窗口"},
    ("evaluation", "POST /rectifications/{rect_id}/close"): {"note": "已整改"},
    ("evaluation", "POST /complaints"): {"subject": "等候太久", "text": "排队两小时", "town": "{town}",
                                         "channel": "hotline", "complainant": {"name": "张三", "phone": "{phone}"}},
    ("evaluation", "POST /complaints/{number}/assign"): {"to": "approver-own", "department": "minzheng"},
    ("evaluation", "POST /complaints/{number}/resolve"): {"resolution": "已说明"},
    # form-encoded, as GeoReport clients send it
    ("portal", "POST /open311/v2/requests.json"): {"service_code": "MZ-0001", "jurisdiction_id": "{town}",
                                                   "first_name": "三", "last_name": "张", "phone": "{phone}",
                                                   "attribute[id_number]": "{id_number}",
                                                   "attribute[materials][]": ["idcard", "photo"]},
}


def cells(row: str) -> dict[str, tuple[str, ...]]:
    """A row's answers by caller, as ANSWERS names them: (own scope's, foreign scope's), or (the one,) for the
    callers of one scope."""
    parts = row.split()
    if len(parts) != len(CALLERS) or any(not 1 <= len(p) <= 2 or set(p) - set(ANSWERS) for p in parts):
        raise ValueError(f"a row needs {len(CALLERS)} cells of {''.join(ANSWERS)}, got {row!r}")
    answers = {}
    for caller, cell in zip(CALLERS, parts, strict=True):
        if caller in ONE_SCOPE and len(cell) == 2:
            raise ValueError(f"{caller} has one scope only: {row!r}")
        own, foreign = cell[0], cell[-1]
        answers[caller] = (ANSWERS[own],) if caller in ONE_SCOPE else (ANSWERS[own], ANSWERS[foreign])
    return answers
