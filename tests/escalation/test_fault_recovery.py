"""Fault test (issue 5): 200 crisis messages over real websockets to Daphne, with a
real Celery worker and beat on a Redis broker, while the worker is SIGKILLed and
restarted and Redis is killed and restarted twice. Afterwards every escalation exists
exactly once and every one reached a clinician socket. Prints the time to recover."""

from __future__ import annotations

import pytest

from tests.faults import assert_stored_triaged_escalated_once, storm_run

pytestmark = [pytest.mark.real, pytest.mark.timeout(240)]

CLIENTS, PER_CLIENT = 10, 20


def test_200_crisis_messages_survive_worker_kills_and_redis_restarts(make_user, tmp_path):
    plan = [(1.0, "kill_worker"), (2.0, "start_worker"), (3.0, "restart_redis"),
            (4.5, "kill_worker"), (5.5, "start_worker"), (6.5, "restart_redis")]
    report = storm_run(make_user, tmp_path, clients=CLIENTS, per_client=PER_CLIENT, daphnes=1,
                       worker_queues="crisis,default", plan=plan)
    assert_stored_triaged_escalated_once(CLIENTS * PER_CLIENT)
    assert report["missing"] == set(), f"escalations never seen by a clinician socket: {sorted(report['missing'])[:10]}"
    print(f"\nFAULT TEST: {CLIENTS * PER_CLIENT} crisis messages, faults {report['faults']}; every escalation at a "
          f"clinician socket {report['recovery_s']:.1f} s after the last fault (worst single escalation "
          f"{report['worst_after_recovery_s']:.1f} s after recovery); client reconnects: {report['client_reconnects']}")
