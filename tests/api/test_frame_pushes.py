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


@pytest.fixture
def slow_route():
    """`test.slow` blocks its worker thread until released; `test.quick` answers at once."""
    import threading

    release = threading.Event()

    def slow(user, frame):
        release.wait(10)
        return {"type": "test.slow_done", "ref": frame.get("ref")}

    def quick(user, frame):
        return {"type": "test.quick_done", "ref": frame.get("ref")}

    wsproto.load_handlers()
    wsproto._ROUTES["test.slow"] = wsproto.Route("test.slow", slow, None)
    wsproto._ROUTES["test.quick"] = wsproto.Route("test.quick", quick, None)
    yield release
    release.set()
    wsproto._ROUTES.pop("test.slow", None)
    wsproto._ROUTES.pop("test.quick", None)


async def test_one_sockets_slow_call_does_not_hold_up_another_socket(make_user, token_for, slow_route):
    # Handlers run in a thread pool: before, every socket's database work in a process
    # queued on one thread, so one slow call (a lock wait, a slow commit) delayed them all.
    a, b = await database_sync_to_async(make_user)(), await database_sync_to_async(make_user)()
    comm_a = await ws_open(await database_sync_to_async(token_for)(a))
    comm_b = await ws_open(await database_sync_to_async(token_for)(b))
    await comm_a.send_json_to({"type": "test.slow", "ref": "a"})
    await comm_b.send_json_to({"type": "test.quick", "ref": "b"})
    assert (await ws_receive_until(comm_b, "test.quick_done", timeout=3))["ref"] == "b"
    slow_route.set()
    assert (await ws_receive_until(comm_a, "test.slow_done"))["ref"] == "a"
    await comm_a.disconnect()
    await comm_b.disconnect()


async def test_pushes_reach_a_socket_without_a_thread_hop_each(make_user, token_for, monkeypatch):
    # Channels hops to a thread before every message it dispatches (to close stale
    # database connections); the client consumer does not, pushes included.
    import channels.consumer

    async def refuse():
        raise AssertionError("per-message connection clean-up hop")

    monkeypatch.setattr(channels.consumer, "aclose_old_connections", refuse)
    user = await database_sync_to_async(make_user)()
    comm = await ws_open(await database_sync_to_async(token_for)(user))
    await database_sync_to_async(send_on_commit)([user_group(user.id)], {"type": "test.push", "n": 7})
    assert (await ws_receive_until(comm, "test.push"))["n"] == 7
    await comm.disconnect()


async def test_pushes_to_a_busy_group_are_merged_into_batches_in_order(make_user, token_for):
    # Forum threads and boards (coalesce=True): a quiet group's push goes out at once, what
    # follows within the window arrives as one `batch` frame, in order.
    from config import realtime

    user = await database_sync_to_async(make_user)()
    comm = await ws_open(await database_sync_to_async(token_for)(user))
    with realtime.collect() as pushes:
        for n in range(5):
            realtime.send_now([user_group(user.id)], {"type": "test.push", "n": n}, coalesce=True)
    await realtime.deliver(pushes)
    first = await ws_receive_until(comm, "test.push")
    batch = await ws_receive_until(comm, "batch")
    assert first["n"] == 0
    assert [f["n"] for f in batch["frames"]] == [1, 2, 3, 4]
    assert all(f["type"] == "test.push" for f in batch["frames"])
    await comm.disconnect()
