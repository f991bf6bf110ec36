"""A frame's pushes (made by services after commit) reach sockets from the consumer's
event loop, in order, and still go out when the handler fails after its commit (on the
quick path; with `make test`, on channels_redis)."""

import pytest
from channels.db import database_sync_to_async
from django.db import transaction

from api import wsproto
from config.exceptions import ServiceError
from config.realtime import send_on_commit, user_group
from tests.conftest import ws_open, ws_receive_until

pytestmark = [pytest.mark.django_db(transaction=True)]


class _Refused(ServiceError):
    code = "validation_error"
    status = 400


@pytest.fixture
def test_route():
    def handler(user, frame):
        with transaction.atomic():
            send_on_commit([user_group(user.id)], {"type": "test.push", "n": 1})
            send_on_commit([user_group(user.id)], {"type": "test.push", "n": 2})
        if frame.get("fail"):
            raise _Refused("after the commit")
        return {"type": "test.done", "ref": frame.get("ref")}

    wsproto.load_handlers()
    wsproto._ROUTES["test.pushes"] = wsproto.Route("test.pushes", handler, None)
    yield
    wsproto._ROUTES.pop("test.pushes", None)


@pytest.mark.parametrize("fail", [False, True])
async def test_pushes_of_a_frame_arrive_in_order_even_if_the_handler_fails_after_commit(make_user, token_for, test_route, fail):
    user = await database_sync_to_async(make_user)()
    comm = await ws_open(await database_sync_to_async(token_for)(user))
    await comm.send_json_to({"type": "test.pushes", "ref": "r1", "fail": fail})
    # The reply comes first (pushes to one's own groups come back through the layer).
    final = await ws_receive_until(comm, "error" if fail else "test.done")
    assert final["ref"] == "r1"
    first = await ws_receive_until(comm, "test.push")
    second = await ws_receive_until(comm, "test.push")
    assert (first["n"], second["n"]) == (1, 2)
    await comm.disconnect()
