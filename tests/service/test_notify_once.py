"""A notice is sent at most once: recorded as sending before the channel is called, never sent twice."""
import eventlet
from eventlet.event import Event
from kombu import Connection, Exchange, Queue
from sqlalchemy import event
from sqlalchemy.orm import Session

from services.notify.channels import NotSent
from services.notify.models import Delivery
from shared.contracts import make_message, rk_accepted, rk_notice_issued, rk_updated
from tests.support import TOWN_A, wait_for

PHONE = "13912345678"


class CountingChannel:
    """An SMS gateway stand-in that counts its calls; it can refuse, fail ambiguously or hang."""

    name = "sms"

    def __init__(self, refuse: int = 0, ambiguous: bool = False, hang: bool = False, timeout_seconds: float = 5.0):
        self.calls: list[tuple[str, str, str]] = []
        self.refuse = refuse  # refuse (NotSent) this many first calls
        self.ambiguous = ambiguous
        self.hang = hang
        self.timeout_seconds = timeout_seconds
        self.started = Event()

    @property
    def keys(self) -> list[str]:
        return [key for key, _phone, _text in self.calls]

    def send(self, out):
        self.calls.append((out.idempotency_key, out.phone, out.text))
        if not self.started.ready():
            self.started.send(True)
        if self.hang:
            Event().wait()  # the process dies while the gateway has the text
        if self.refuse > 0:
            self.refuse -= 1
            raise NotSent("gateway busy (HTTP 503 before accepting)")
        if self.ambiguous:
            raise TimeoutError("no answer from the gateway within its timeout")
        return "accepted"


def case_accepted(number: str, town: str = TOWN_A, via_agent: str | None = None):
    return make_message("case.accepted", number, 1, {
        "accepting_town": town, "handling_town": town, "item_code": "MZ-0001", "item_name": "测试事项",
        "department": "minzheng", "kind": "instant", "status": "in_review", "deadline": None,
        "first_responder": "clerk-1", "via_agent": via_agent}, producer="test")


def case_consulted(number: str, town: str = TOWN_A):
    return make_message("case.updated", number, 1, {
        "accepting_town": town, "action": "consult", "status": "consulted", "deadline": None}, producer="test")


def notice(number: str, notice_id: int = 1, town: str = TOWN_A, kind: str = "acceptance"):
    return make_message("notice.issued", number, 1, {
        "accepting_town": town, "notice_id": notice_id, "notice_kind": kind, "title": "受理通知书",
        "sms_text": f"【全城通办】受理号{number}", "contact": {"name": "李四", "phone": PHONE, "channel": "sms"}},
        producer="test")


def metric(city, instance, name, **labels) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(city.call("GET", instance, "/metrics").text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def handled(city, outcome: str) -> float:
    return metric(city, "notify", "tongban_messages_handled_total", queue=city.queue("notify", "notices"),
                  outcome=outcome)


def deliveries(city, number: str) -> list[dict]:
    r = city.call("GET", "notify", f"/cases/{number}/deliveries", city.ops)
    return r.json()["deliveries"] if r.status_code == 200 else []


def delivered(city, number: str, status: str = "sent", count: int = 1) -> list[dict]:
    return wait_for(lambda: len(d := [x for x in deliveries(city, number) if x["status"] == status]) == count and d,
                    what=f"{count} delivery(ies) {status} for {number}")


class SentNotices:
    """A queue of our own on the events exchange, counting the notice.sent messages notify publishes."""

    def __init__(self, city):
        self.city = city
        self.queue = Queue(f"{city.prefix}.test.notice-sent",
                           exchange=Exchange(f"{city.prefix}.events", type="topic", durable=True),
                           routing_key="notice.sent.#", durable=True)
        with Connection(city.amqp_url) as conn:
            self.queue(conn.default_channel).declare()

    def count(self) -> int:
        return self.city.queue_depth(self.queue.name)

    def close(self):
        with Connection(self.city.amqp_url) as conn:
            conn.default_channel.queue_delete(self.queue.name)


def start_notify(city, channel, **changes) -> SentNotices:
    sent = SentNotices(city)  # before notify starts, so no notice.sent goes unseen
    city.start("notify", build={"channels": {"sms": channel}}, **changes)
    return sent


class FailOnceMarkingSent:
    """Fails, once, the commit of the transaction that marks a delivery `sent` (a database blip)."""

    def __init__(self):
        self.failures = 0

    def _marks_sent(self, session) -> bool:
        return any(isinstance(o, Delivery) and o.status == "sent" for o in list(session.dirty))

    def after_flush(self, session, _context):
        if self._marks_sent(session):  # flushed early: before_commit would no longer see it dirty
            session.info["marks_sent"] = True

    def before_commit(self, session):
        if self.failures == 0 and (session.info.get("marks_sent") or self._marks_sent(session)):
            self.failures += 1
            raise RuntimeError("database blip while committing the sent delivery")

    def __enter__(self):
        event.listen(Session, "after_flush", self.after_flush)
        event.listen(Session, "before_commit", self.before_commit)
        return self

    def __exit__(self, *exc):
        event.remove(Session, "after_flush", self.after_flush)
        event.remove(Session, "before_commit", self.before_commit)


def test_a_failing_commit_after_the_send_does_not_send_again(any_city):
    city = any_city
    sms = CountingChannel()
    sent = start_notify(city, sms)
    number = f"{TOWN_A}-20261124-00001"
    try:
        with FailOnceMarkingSent() as blip:
            city.publish(case_accepted(number), rk_accepted(TOWN_A))
            city.publish(notice(number), rk_notice_issued(TOWN_A))
            [d] = delivered(city, number)
        assert blip.failures == 1, "the commit after the send failed once"
        assert metric(city, "notify", "tongban_messages_settled_total", queue=city.queue("notify", "notices"),
                      outcome="retry") == 1, "the failed commit sent the message to wait for a retry"
        assert handled(city, "recorded") == 1, "the retry recorded the send it found done"
        wait_for(lambda: sent.count() == 1, what="notice.sent published")
        eventlet.sleep(1.0)
        assert len(sms.calls) == 1, "sent once, not again after the failed commit"
        assert sms.calls[0] == (str(d["id"]), PHONE, f"【全城通办】受理号{number}")
        assert d["attempts"] == 1 and d["channel"] == "sms"
        assert sent.count() == 1, "one notice.sent"
        assert city.stats("notify")["by_status"] == {"sent": 1}
    finally:
        sent.close()


def test_a_duplicated_notice_is_sent_once(any_city):
    city = any_city
    sms = CountingChannel()
    sent = start_notify(city, sms)
    number = f"{TOWN_A}-20261124-00002"
    try:
        city.publish(case_accepted(number), rk_accepted(TOWN_A))
        issued = notice(number)
        city.publish(issued, rk_notice_issued(TOWN_A))
        city.publish(issued, rk_notice_issued(TOWN_A))  # the broker may deliver twice
        city.publish(notice(number), rk_notice_issued(TOWN_A))  # the same notice under another message id
        [d] = delivered(city, number)
        wait_for(lambda: sent.count() == 1, what="notice.sent published")
        eventlet.sleep(1.5)  # any copy on its way back from a retry
        assert sms.keys == [str(d["id"])], "one send, keyed by the delivery id"
        assert len(deliveries(city, number)) == 1 and sent.count() == 1
        assert city.stats("notify")["total"] == 1
    finally:
        sent.close()


def test_the_channel_gets_the_delivery_id_as_idempotency_key(any_city):
    city = any_city
    sms = CountingChannel()
    sent = start_notify(city, sms)
    accepted, consulted = f"{TOWN_A}-20261124-00003", f"{TOWN_A}-20261124-00004"
    try:
        city.publish(case_accepted(accepted), rk_accepted(TOWN_A))
        city.publish(case_consulted(consulted), rk_updated(TOWN_A))  # a consultation: only case.updated
        city.publish(notice(accepted, 7), rk_notice_issued(TOWN_A))
        city.publish(notice(accepted, 8, kind="result"), rk_notice_issued(TOWN_A))
        city.publish(notice(consulted, 9), rk_notice_issued(TOWN_A))
        ids = [d["id"] for d in delivered(city, accepted, count=2) + delivered(city, consulted)]
        assert sorted(sms.keys) == sorted(str(i) for i in ids) and len(set(ids)) == 3
        wait_for(lambda: sent.count() == 3, what="three notice.sent")
    finally:
        sent.close()


def test_a_channel_that_did_not_send_is_tried_again_later(any_city):
    city = any_city
    sms = CountingChannel(refuse=1)
    sent = start_notify(city, sms)
    number = f"{TOWN_A}-20261124-00005"
    try:
        city.publish(case_accepted(number), rk_accepted(TOWN_A))
        city.publish(notice(number), rk_notice_issued(TOWN_A))
        [d] = delivered(city, number)
        assert d["attempts"] == 2, "refused once, then sent"
        assert sms.keys == [str(d["id"])] * 2, "the same idempotency key both times"
        assert metric(city, "notify", "tongban_notify_deliveries_total", outcome="failed") == 1
        wait_for(lambda: sent.count() == 1, what="notice.sent published")
    finally:
        sent.close()


def test_a_send_that_may_have_happened_is_in_doubt_and_never_repeated(any_city):
    city = any_city
    sms = CountingChannel(ambiguous=True)
    sent = start_notify(city, sms)
    number = f"{TOWN_A}-20261124-00006"
    try:
        city.publish(case_accepted(number), rk_accepted(TOWN_A))
        city.publish(notice(number), rk_notice_issued(TOWN_A))
        [d] = delivered(city, number, status="in_doubt")
        assert metric(city, "notify", "tongban_notify_deliveries_total", outcome="in_doubt") == 1
        city.publish(notice(number), rk_notice_issued(TOWN_A))  # issued again: still not sent twice
        wait_for(lambda: handled(city, "duplicate") == 1, what="the copy recognised")
        eventlet.sleep(2.0)  # longer than every retry wait
        assert sms.keys == [str(d["id"])], "called once; never again"
        assert sent.count() == 0, "not known to be sent: no notice.sent"
        assert city.queue_depth(city.queue("notify", "notices") + ".dlq") == 0, "nothing left to retry"
    finally:
        sent.close()


def test_a_sender_that_died_mid_send_leaves_the_notice_in_doubt_not_sent_twice(any_city):
    city = any_city
    hanging = CountingChannel(hang=True)
    sent = start_notify(city, hanging)
    number = f"{TOWN_A}-20261124-00007"
    try:
        city.publish(case_accepted(number), rk_accepted(TOWN_A))
        city.publish(notice(number), rk_notice_issued(TOWN_A))
        hanging.started.wait()
        [d] = delivered(city, number, status="sending")
        city.stop("notify", kill=True)  # the process dies while the gateway has the text
        eventlet.sleep(3.5)  # longer than the channel's timeout (1 s) and the margin (2 s)

        after = CountingChannel(timeout_seconds=1.0)
        city.start("notify", build={"channels": {"sms": after}})
        [d] = delivered(city, number, status="in_doubt")  # the unacked message came back
        assert handled(city, "in_doubt") == 1
        eventlet.sleep(1.0)
        assert after.calls == [] and len(hanging.calls) == 1, "never sent again"
        assert sent.count() == 0
    finally:
        sent.close()
