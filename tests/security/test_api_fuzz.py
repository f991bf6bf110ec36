"""S2: the REST API fuzzed with schemathesis against the project's own OpenAPI schema.

Every operation is called with generated input as a supervisor (the widest role), a
young person and an anonymous client; no response may be a 5xx, and every JSON error
must use the one error format. Prints the number of calls made.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, given, settings

from accounts.models import Role

EXAMPLES_PER_OPERATION = 8


@pytest.fixture
def wsgi_app():
    """The real WSGI handler, minus closing DB connections between requests (as Django's
    test client does): the test's transaction must survive every call."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.mark.django_db
def test_no_server_errors_anywhere_in_the_api(make_user, token_for, wsgi_app):
    schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", wsgi_app)
    tokens = {
        "supervisor": token_for(make_user(Role.SUPERVISOR)),
        "young_person": token_for(make_user(Role.YOUNG_PERSON)),
        "anonymous": None,
    }
    problems: list[str] = []
    calls = operations = 0

    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def exercise(case):
            nonlocal calls
            for who, token in tokens.items():
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                response = case.call(headers=headers)
                calls += 1
                where = f"{who}: {case.method} {case.formatted_path}"
                if response.status_code >= 500:
                    problems.append(f"{where} -> {response.status_code}: {response.text[:200]}")
                elif response.status_code >= 400 and response.headers.get("Content-Type", "").startswith("application/json"):
                    body = response.json()
                    if set(body) != {"error"} or not {"code", "detail"} <= set(body["error"]):
                        problems.append(f"{where} -> {response.status_code} not in the error format: {str(body)[:200]}")

        exercise()
    print(f"\nS2: {operations} operations, {calls} calls, {len(problems)} problems")
    assert not problems, "\n".join(problems[:20])
