"""An approver's decision and the case's closing (or a new version) reaching the department at the same moment,
on PostgreSQL: the decision stands, and the closing finds nothing open (found by the chaos run: the closing
wrote `withdrawn` over a decision already published, and the books were three decisions short)."""
from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, date, datetime

import pytest

from services.approval.models import WorkItem, WorkItems
from services.approval.service import VERSIONS
from shared.store import Store
from shared.vocabulary import WorkItemStatus

CASE, DEPARTMENT = "320583101-20261207-00042", "minzheng"


@pytest.fixture
def store(postgres):
    s = Store(postgres.new(f"approval_locks_{uuid.uuid4().hex[:4]}"), VERSIONS, "unused")
    s.migrate()
    yield s
    s.engine.dispose()


def _pending_item(store: Store) -> int:
    with store.transaction() as tx:
        item = WorkItem(case_number=CASE, case_version=1, department=DEPARTMENT, handling_town=CASE[:9],
                        accepting_town=CASE[:9], item_code="MZ-0001", item_name="测试事项", kind="promised",
                        deadline=date(2026, 12, 31), status=WorkItemStatus.PENDING, received_at=datetime.now(UTC))
        WorkItems(tx.session).add(item)
        tx.session.flush()
        return item.id


def test_a_closing_that_arrives_while_an_approver_decides_leaves_the_decision_standing(store):
    item_id = _pending_item(store)
    closing: dict = {}

    def close_the_case():  # what on_case_completed does: withdraw whatever is still open
        with store.transaction() as tx:
            repo = WorkItems(tx.session)
            items = repo.open_for_case(CASE, DEPARTMENT)
            for item in items:
                item.status = WorkItemStatus.WITHDRAWN
            closing["withdrew"] = [i.id for i in items]
            closing["at"] = time.monotonic()

    with store.transaction() as tx:  # the approver's decision, holding the item's lock until it commits
        item = WorkItems(tx.session).get(item_id)
        item.status, item.outcome = WorkItemStatus.DECIDED, "approved"
        tx.session.flush()
        other = threading.Thread(target=close_the_case)
        other.start()
        time.sleep(1.0)
        assert "at" not in closing, "the closing read the item while the decision held it"
        decided_at = time.monotonic()
    other.join(30)
    assert not other.is_alive()
    assert closing["withdrew"] == [] and closing["at"] >= decided_at
    with store.transaction() as tx:
        assert WorkItems(tx.session).get(item_id).status == WorkItemStatus.DECIDED


def test_an_item_still_open_is_withdrawn_as_before(store):
    item_id = _pending_item(store)
    with store.transaction() as tx:
        assert [i.id for i in WorkItems(tx.session).open_for_case(CASE, DEPARTMENT)] == [item_id]
