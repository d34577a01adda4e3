"""Trusted publishers: each service kind has its own broker user, and RabbitMQ itself refuses what it may not do."""
import amqp
import pytest
from kombu import Connection, Exchange, Producer, Queue

from shared.contracts import make_message, rk_accepted, rk_decided
from tests.conftest import AMQP_URL
from tests.support import TOWN_A, City
from tongban import cli


def _decision(number: str):
    return make_message("case.decided", number, 1, {
        "accepting_town": TOWN_A, "handling_town": TOWN_A, "department": "minzheng", "outcome": "approved",
        "reason": None, "result_number": "X-1", "decided_by": "forger", "work_item_id": 1}, producer="forger")


def _publish_as(url: str, exchange: str, routing_key: str, message) -> None:
    with Connection(url, transport_options={"confirm_publish": True}) as conn:
        producer = Producer(conn.default_channel, exchange=Exchange(exchange, type="topic", durable=True))
        producer.publish(message.to_wire(), routing_key=routing_key, serializer="json", retry=False)


def test_the_broker_refuses_a_decision_published_with_intakes_credentials(city):
    city.start("intake-320583101")
    intake_url = city.settings("intake-320583101").service_amqp_url
    assert f"{city.prefix}-intake:" in intake_url, "intake connects as its own user, not as guest"
    events = f"{city.prefix}.events"
    # what intake owns goes through …
    _publish_as(intake_url, events, rk_accepted(TOWN_A), make_message("case.updated", f"{TOWN_A}-20261125-00001", 1, {
        "accepting_town": TOWN_A, "action": "probe", "status": "in_review", "deadline": None}, producer="t"))
    # … a decision, which only a department may publish, is refused by RabbitMQ's topic permissions
    with pytest.raises(amqp.exceptions.AccessRefused):
        _publish_as(intake_url, events, rk_decided("minzheng", TOWN_A), _decision(f"{TOWN_A}-20261125-00001"))
    # and approval, which may decide, may not route work
    approval_url = city.settings("approval-minzheng").service_amqp_url
    with pytest.raises(amqp.exceptions.AccessRefused):
        _publish_as(approval_url, f"{city.prefix}.work", "case.routed.minzheng.320583101",
                    _decision(f"{TOWN_A}-20261125-00001"))
    _publish_as(approval_url, events, rk_decided("minzheng", TOWN_A), _decision(f"{TOWN_A}-20261125-00001"))


def test_a_service_reads_only_its_own_queues(city):
    city.start("intake-320583101", "approval-minzheng")
    intake_url = city.settings("intake-320583101").service_amqp_url
    with Connection(intake_url) as conn:
        own = Queue(city.queue("intake-320583101", "decisions"), no_declare=True)
        assert own(conn.default_channel).get() is None  # its own: allowed (and empty)
    with Connection(intake_url) as conn:
        work = Queue(city.queue("approval-minzheng", "work"), no_declare=True)
        with pytest.raises(amqp.exceptions.AccessRefused):
            work(conn.default_channel).get()
    # nor may it slip a message into another's queue by the default exchange
    with pytest.raises(amqp.exceptions.AccessRefused):
        with Connection(intake_url, transport_options={"confirm_publish": True}) as conn:
            Producer(conn.default_channel).publish({"x": 1}, exchange="",
                                                  routing_key=city.queue("approval-minzheng", "work"),
                                                  serializer="json", retry=False)


@pytest.fixture
def bare_city(tmp_path):
    """A city whose bus nobody made ahead: the commands below make it."""
    c = City(amqp_url=AMQP_URL, data_dir=tmp_path / "data", prepared_bus=False)
    yield c
    c.close()


def test_bus_commands_create_the_users_and_declare_the_registry(bare_city, monkeypatch, capsys):
    city = bare_city
    monkeypatch.setenv("TONGBAN_AMQP_URL", city.amqp_url)
    monkeypatch.setenv("TONGBAN_BUS_PREFIX", city.prefix)
    monkeypatch.setenv("TONGBAN_DATA_DIR", str(city.data_dir))
    monkeypatch.setenv("TONGBAN_BUS_SECRET", "test-bus-secret")
    monkeypatch.setenv("TONGBAN_RETRY_DELAYS", "0.2,0.5,1")
    city._users = True  # the command does what City.start would: close() removes it all afterwards
    assert cli.main(["bus", "users"]) == 0
    out = capsys.readouterr().out
    assert f"{city.prefix}-intake" in out and "derived from TONGBAN_BUS_SECRET" in out
    assert cli.main(["bus", "declare"]) == 0
    out = capsys.readouterr().out
    assert "for 12 towns and 14 departments" in out
    # a department no instance ever served already has its work queue: work for it waits there
    assert city.queue_depth(city.queue("approval-linye", "work")) == 0
    # the users' passwords are the ones the services derive from the same secret
    city.start("notify")
    assert city.call("GET", "notify", "/health").status_code == 200
