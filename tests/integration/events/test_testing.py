"""eventjobs.events.testing.run_consumers inside a real django.test.TestCase: the test's
events are uncommitted, and everything happens in the test's own transaction."""

from django.test import TestCase

import eventjobs
from eventjobs.events.testing import HandlerError, run_consumers
from eventjobs.models import Cursor, DeadLetter
from tests.testapp import consumers
from tests.testapp.models import EventLedger


class RunConsumersTests(TestCase):
    def ledger(self, group: str) -> list[int]:
        return list(EventLedger.objects.filter(group=group).order_by("id")
                    .values_list("event_id", flat=True))

    def test_runs_the_tests_own_uncommitted_events_and_advances(self):
        events = eventjobs.publish_many([{"type": "order.created", "key": f"k{i}"}
                                         for i in range(5)])
        other = eventjobs.publish("user.created")
        # "second" handles order.* and invoice.paid: 5 calls; "ledger" handles all: 6.
        self.assertEqual(run_consumers("second"), 5)
        self.assertEqual(self.ledger("second"), [e.id for e in events])
        self.assertEqual(run_consumers("second", "ledger"), 6)  # second has nothing left
        self.assertEqual(self.ledger("ledger"), [e.id for e in events] + [other.id])
        self.assertEqual(run_consumers("ledger"), 0)  # positions advanced
        later = eventjobs.publish("order.paid")
        self.assertEqual(run_consumers("ledger"), 1)
        self.assertEqual(self.ledger("ledger")[-1], later.id)
        positions = set(Cursor.objects.filter(group_id="ledger")
                        .values_list("txid", "event_id"))
        self.assertEqual(positions, {later.position})

    def test_every_registered_group_when_none_is_named(self):
        event = eventjobs.publish("order.created", {"seq": 1})
        run_consumers()
        for group in ("ledger", "second", "audit", "flaky", "tail", "poison"):
            self.assertEqual(self.ledger(group), [event.id], group)

    def test_a_failing_handler_raises_and_leaves_the_transaction_usable(self):
        eventjobs.publish("t", {"fail_in": ["flaky"]})
        with self.assertRaisesMessage(ValueError, "fails in flaky"):
            run_consumers("flaky")
        self.assertEqual(EventLedger.objects.count(), 0)  # usable, and nothing half-done
        eventjobs.publish("t", {"poison": "rollback"})
        with self.assertRaisesMessage(HandlerError, "marked the batch's transaction"):
            run_consumers("poison")

    def test_without_raise_errors_it_retries_then_dead_letters_like_consume(self):
        ok = eventjobs.publish("t", {"seq": 1})
        bad = eventjobs.publish("t", {"fail_in": ["flaky"]})
        after = eventjobs.publish("t", {"seq": 3})
        # flaky has max_attempts=3: 1 + 3 + 1 handler calls.
        self.assertEqual(run_consumers("flaky", raise_errors=False), 5)
        self.assertEqual(self.ledger("flaky"), [ok.id, after.id])
        letter = DeadLetter.objects.get()
        self.assertEqual((letter.event_id, letter.attempts, letter.status),
                         (bad.id, 3, "OPEN"))
        self.assertIn("ValueError", letter.error)
        self.assertEqual(run_consumers("flaky", raise_errors=False), 0)

    def test_handling_a_dead_lettered_event_after_a_reset_resolves_it(self):
        from eventjobs.events import control

        bad = eventjobs.publish("t", {"fail_in": ["flaky"]})
        run_consumers("flaky", raise_errors=False)
        self.assertEqual(DeadLetter.objects.get().status, "OPEN")
        consumers.FIXED = True
        try:
            control.reset("flaky", bad.id)
            self.assertEqual(run_consumers("flaky"), 1)
        finally:
            consumers.FIXED = False
        self.assertEqual(DeadLetter.objects.get().status, "RESOLVED")
