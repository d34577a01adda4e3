"""Notify's contact book: the e-mail address, which only the window's first notices carry, is never blanked by a
later notice without it (SQLite and PostgreSQL, no broker)."""
from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from services.notify.models import Contact, Deliveries
from shared import db
from tests.unit.test_models import versions


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request, tmp_path):
    url = f"sqlite:///{tmp_path}/notify.db" if request.param == "sqlite" else \
        request.getfixturevalue("postgres").new("notify")
    engine = db.make_engine(url)
    db.migrate(engine, versions("notify"))
    yield engine
    engine.dispose()


def _contact(email: str | None, phone: str = "13912345678") -> Contact:
    return Contact(case_number="320583101-20261207-00001", accepting_town="320583101", name="李四", phone=phone,
                   channel="email", email=email)


def test_a_later_notice_without_the_address_keeps_it(engine):
    with Session(engine) as s, s.begin():
        Deliveries(s).save_contact(_contact(None))  # a later notice queued first: no address yet
    with Session(engine) as s, s.begin():
        Deliveries(s).save_contact(_contact("li.si@example.com"))
    with Session(engine) as s, s.begin():
        repo = Deliveries(s)
        assert repo.contact("320583101-20261207-00001").email == "li.si@example.com"  # read in this transaction
        repo.save_contact(_contact(None, phone="13800001111"))  # the result notice: no address, a new phone
        again = repo.contact("320583101-20261207-00001")
        assert (again.email, again.phone) == ("li.si@example.com", "13800001111")
