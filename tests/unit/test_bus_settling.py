"""What a dead letter's reason header says, and where a retry parks a message (no broker needed)."""
from shared.bus import Topology, _error_text
from shared.contracts import Unacceptable


def test_a_dead_letters_reason_masks_id_and_phone_numbers():
    text = _error_text(RuntimeError("applicant 11010519491231002X, phone 13812345678"))
    assert "11010519491231002X" not in text and "13812345678" not in text
    assert "110105********002X" in text and "138****5678" in text
    assert _error_text(Unacceptable("not ours")) == "Unacceptable: not ours"


def test_each_wait_has_its_own_queue_and_key_per_kind():
    t = Topology("tb", retry_delays=(1, 10, 0.2))
    assert [t.retry_routing_key("intake", i, "tb.intake-320583101.decisions") for i in range(3)] == [
        "intake.1000.tb.intake-320583101.decisions", "intake.10000.tb.intake-320583101.decisions",
        "intake.200.tb.intake-320583101.decisions"]
    q = t.retry_queue("intake", 10)
    assert q.name == "tb.retry-intake.10000ms" and q.queue_arguments["x-message-ttl"] == 10000
    assert q.queue_arguments["x-dead-letter-exchange"] == "tb.requeue"
    # the queue the message failed in is bound to take it back from any kind's wait, or a replay
    work = t.work_queue("intake-320583101", "decisions", ["case.decided.*.320583101"])
    assert any(b.exchange.name == "tb.requeue" and b.routing_key == "*.*.tb.intake-320583101.decisions"
               for b in work.bindings)
    assert "x-dead-letter-exchange" not in work.queue_arguments, "set by the policy, see Topology.policy"
