"""R2: clients that drop and resume, explored by a Hypothesis state machine over real
websockets to a real Daphne process (PostgreSQL, channels_redis). A young person and a
counsellor send, drop mid-send, send while offline, reconnect and resend with the same
client_msg_id; at the end every client's transcript equals the database: same order,
no gap, no duplicate, every message its user wrote exactly once."""

from __future__ import annotations

import json
import uuid

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from websockets.sync.client import connect

from accounts.models import Role
from accounts.tokens import token_issue
from chat.models import Message

pytestmark = [pytest.mark.real, pytest.mark.timeout(300)]
WHO = st.sampled_from(["young", "staff"])


class Device:
    def __init__(self, url: str, token: str, conversation: int) -> None:
        self.url, self.token, self.conversation = url, token, conversation
        self.ws = None
        self.messages: dict[int, tuple[str, str | None]] = {}  # seq -> (body, client_msg_id)
        self.last = 0
        self.unacked: dict[str, str] = {}  # client_msg_id -> body, resent until acknowledged
        self.written: list[str] = []

    # transport --------------------------------------------------------------------
    def connect(self) -> None:
        self.ws = connect(self.url, origin="http://127.0.0.1", subprotocols=["earlyhelp.v1", f"token.{self.token}"],
                          open_timeout=10, ping_interval=None, close_timeout=1)
        assert json.loads(self.ws.recv(timeout=10))["type"] == "auth.ok"
        self.sync()
        for cmid, body in list(self.unacked.items()):  # resend with the same id
            self._send(cmid, body)
        self.pump_until_quiet()

    def drop(self) -> None:
        if self.ws is not None:
            self.ws.close()
            self.ws = None

    def _send(self, cmid: str, body: str) -> None:
        self.ws.send(json.dumps({"type": "message.send", "conversation": self.conversation,
                                 "client_msg_id": cmid, "body": body}))

    def sync(self) -> None:
        self.ws.send(json.dumps({"type": "sync", "conversation": self.conversation, "after_seq": self.last}))

    def handle(self, frame: dict) -> None:
        kind = frame.get("type")
        if kind == "message.ack":
            self.unacked.pop(frame["client_msg_id"], None)
        elif kind == "message.new" and frame["conversation"] == self.conversation:
            if frame["seq"] > self.last + 1:
                self.sync()
            self._store(frame)
        elif kind == "sync.result":
            for message in frame["messages"]:
                self._store(message)
            if frame.get("has_more"):
                self.sync()
        elif kind == "error":
            raise AssertionError(frame)

    def _store(self, message: dict) -> None:
        seq = message["seq"]
        previous = self.messages.get(seq)
        assert previous is None or previous[0] == message["body"], "a seq never changes its message"
        self.messages[seq] = (message["body"], message.get("client_msg_id"))
        self.last = max(self.last, seq)

    def pump_until_quiet(self, quiet: float = 0.15) -> None:
        while True:
            try:
                self.handle(json.loads(self.ws.recv(timeout=quiet)))
            except TimeoutError:
                return

    # user actions -----------------------------------------------------------------
    def write(self, body: str, *, wait: bool) -> None:
        cmid = str(uuid.uuid4())
        self.unacked[cmid] = body
        self.written.append(body)
        if self.ws is None:
            return  # offline: kept and resent on reconnect
        self._send(cmid, body)
        if wait:
            self.pump_until_quiet()


class ResumeMachine(RuleBasedStateMachine):
    url: str = ""
    make_session = None
    counter = 0

    @initialize()
    def start(self):
        young_token, staff_token, self.conversation = type(self).make_session()
        self.devices = {"young": Device(self.url, young_token, self.conversation),
                        "staff": Device(self.url, staff_token, self.conversation)}
        for device in self.devices.values():
            device.connect()

    def _body(self, who: str) -> str:
        type(self).counter += 1
        return f"{who} says {type(self).counter}"

    @rule(who=WHO)
    def send(self, who):
        self.devices[who].write(self._body(who), wait=True)

    @precondition(lambda self: any(d.ws for d in self.devices.values()))
    @rule(who=WHO)
    def send_then_drop_before_the_ack(self, who):
        device = self.devices[who]
        device.write(self._body(who), wait=False)
        device.drop()

    @rule(who=WHO)
    def drop(self, who):
        self.devices[who].drop()

    @rule(who=WHO)
    def resume(self, who):
        device = self.devices[who]
        if device.ws is None:
            device.connect()

    @rule(who=WHO)
    def listen(self, who):
        device = self.devices[who]
        if device.ws is not None:
            device.pump_until_quiet(0.05)

    @invariant()
    def seqs_are_unique_and_ordered(self):
        for device in getattr(self, "devices", {}).values():
            bodies = [body for body, _ in device.messages.values()]
            assert len(bodies) == len(set(bodies)), "no duplicate message in a transcript"

    def teardown(self):
        if not hasattr(self, "devices"):
            return
        for device in self.devices.values():  # everyone comes back (resending what was unacked) ...
            device.drop()
            device.connect()
        for device in self.devices.values():  # ... then each catches up on what the others resent
            device.sync()
            device.pump_until_quiet(0.3)
        db = list(Message.objects.filter(conversation_id=self.conversation).order_by("seq").values_list("seq", "body"))
        for who, device in self.devices.items():
            assert not device.unacked, f"{who}: everything written was acknowledged"
            seen = [(seq, device.messages[seq][0]) for seq in sorted(device.messages)]
            assert seen == db, f"{who}'s transcript equals the database"
            bodies = [body for _, body in db]
            for body in device.written:
                assert bodies.count(body) == 1, f"{body!r} stored exactly once"
            device.drop()


def test_drop_and_resume_state_machine(make_user, daphne_servers):
    from tests.faults import live_session

    (base,) = daphne_servers(1)

    def make_session():
        young, counsellor = make_user(), make_user(Role.COUNSELLOR)
        session = live_session(young, counsellor, topic="r2")
        return token_issue(user=young)[1], token_issue(user=counsellor)[1], session.conversation_id

    ResumeMachine.url = base.replace("http://", "ws://") + "/ws/"
    ResumeMachine.make_session = staticmethod(make_session)
    ResumeMachine.TestCase.settings = settings(
        max_examples=10, stateful_step_count=15, deadline=None, derandomize=True, database=None,
        suppress_health_check=list(HealthCheck),
    )
    ResumeMachine.TestCase().runTest()
    print(f"\nR2: 10 state-machine runs of up to 15 steps, {ResumeMachine.counter} messages written; "
          "every transcript equal to the database")
