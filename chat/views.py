"""REST mirror of the chat protocol, for clients without a socket (docs/protocol.md).

One view per operation: validate with an Input serializer, obtain objects through
chat.access, call one service, return the same shapes as the websocket frames.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Role
from config.exceptions import WrongRole

from . import events, services
from .access import (
    access_conversation_for_reader,
    access_session_for_participant,
    access_session_for_reader,
    access_session_for_staff,
    access_session_for_young_person,
)
from .models import CaseNote
from .selectors import queue_estimate, queue_list, sessions_for_user

ASYNCAPI_PATH = Path(settings.BASE_DIR) / "docs" / "asyncapi.yaml"


def require_role(user, *roles: str) -> None:
    if user.role not in roles:
        raise WrongRole()


def _staff(user) -> bool:
    return user.role != Role.YOUNG_PERSON


# --- sessions ------------------------------------------------------------------------
class SessionRequestInput(serializers.Serializer):
    topic = serializers.CharField(required=False, allow_blank=True, default="", max_length=services.TOPIC_MAX_CHARS)
    # Length is checked by the service so the code is `body_too_long`, as on the socket.
    body = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)
    client_msg_id = serializers.UUIDField(required=False, allow_null=True, default=None)


class SessionListView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("state", str, description="queued | active | ended | cancelled"),
            OpenApiParameter("all", bool, description="Supervisors: every session, not only their own"),
        ],
        responses=OpenApiTypes.OBJECT,
        summary="List my sessions",
    )
    def get(self, request):
        everyone = request.user.role == Role.SUPERVISOR and request.query_params.get("all") in ("1", "true")
        rows = sessions_for_user(user=request.user, state=request.query_params.get("state") or None, everyone=everyone)
        return Response({"results": [events.session_dict(s, staff=_staff(request.user)) for s in rows]})

    @extend_schema(request=SessionRequestInput, responses={201: OpenApiTypes.OBJECT, 200: OpenApiTypes.OBJECT},
                   summary="Request a counselling session (young people)")
    def post(self, request):
        require_role(request.user, Role.YOUNG_PERSON)
        data = SessionRequestInput(data=request.data)
        data.is_valid(raise_exception=True)
        result = services.session_request(
            young_person=request.user, topic=data.validated_data["topic"], body=data.validated_data["body"],
            client_msg_id=data.validated_data["client_msg_id"],
        )
        code = status.HTTP_200_OK if result.resumed else status.HTTP_201_CREATED
        return Response(result.as_payload(), status=code)


class SessionDetailView(APIView):
    @extend_schema(responses=OpenApiTypes.OBJECT, summary="One session (with queue position while waiting)", operation_id="chat_session_detail")
    def get(self, request, session_id: int):
        session = access_session_for_reader(user=request.user, session_id=session_id)
        data = events.session_dict(session, staff=_staff(request.user))
        if session.state == "queued":
            current = services.session_status(session=session)
            data.update(position=current.position, eta_s=current.eta_s)
        return Response(data)


class SessionEndInput(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=services.REASON_MAX_CHARS)


class SessionEndView(APIView):
    @extend_schema(request=SessionEndInput, responses=OpenApiTypes.OBJECT,
                   summary="End a session, or cancel a waiting request")
    def post(self, request, session_id: int):
        session = access_session_for_participant(user=request.user, session_id=session_id)
        data = SessionEndInput(data=request.data)
        data.is_valid(raise_exception=True)
        session = services.session_end(session=session, user=request.user, reason=data.validated_data["reason"])
        return Response(events.session_dict(session, staff=_staff(request.user)))


class SessionAcceptInput(serializers.Serializer):
    session = serializers.IntegerField(required=False, allow_null=True, default=None)


class SessionAcceptView(APIView):
    @extend_schema(request=SessionAcceptInput, responses=OpenApiTypes.OBJECT,
                   summary="Take the next request (or a given one) from the queue (counsellors)")
    def post(self, request):
        require_role(request.user, Role.COUNSELLOR)
        data = SessionAcceptInput(data=request.data)
        data.is_valid(raise_exception=True)
        session = services.session_accept(counsellor=request.user, session_id=data.validated_data["session"])
        return Response(events.session_dict(session, staff=True))


class StatusInput(serializers.Serializer):
    status = serializers.CharField()
    capacity = serializers.IntegerField(required=False, allow_null=True, default=None)


class CounsellorStatusView(APIView):
    @extend_schema(request=StatusInput, responses=OpenApiTypes.OBJECT, summary="Set availability and capacity")
    def post(self, request):
        require_role(request.user, Role.COUNSELLOR, Role.SUPERVISOR)
        data = StatusInput(data=request.data)
        data.is_valid(raise_exception=True)
        row = services.counsellor_status_set(user=request.user, **data.validated_data)
        return Response({"status": row.status, "capacity": row.capacity})


class QueueView(APIView):
    @extend_schema(responses=OpenApiTypes.OBJECT, summary="The waiting queue (staff)")
    def get(self, request):
        require_role(request.user, Role.COUNSELLOR, Role.SUPERVISOR)
        estimate = queue_estimate()
        queue = queue_list()
        items = [events.queue_item(s, i, estimate.eta_s(i)) for i, s in enumerate(queue, start=1)]
        return Response({"waiting": len(queue), "queue": items})


# --- messages --------------------------------------------------------------------------
class MessageSendInput(serializers.Serializer):
    client_msg_id = serializers.UUIDField()
    body = serializers.CharField(trim_whitespace=False, allow_blank=True)


class MessagesView(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("after_seq", int), OpenApiParameter("limit", int)],
        responses=OpenApiTypes.OBJECT,
        summary="Transcript page: messages after `after_seq`, oldest first",
    )
    def get(self, request, conversation_id: int):
        grant = access_conversation_for_reader(user=request.user, conversation_id=conversation_id)
        try:
            after_seq = int(request.query_params.get("after_seq", 0))
            limit = int(request.query_params.get("limit", 100))
        except ValueError as exc:
            raise serializers.ValidationError({"after_seq": "must be an integer"}) from exc
        page = services.transcript_read(user=request.user, grant=grant, after_seq=after_seq, limit=limit, via="rest")
        messages = [events.message_dict(m, staff=_staff(request.user)) for m in page.messages]
        next_after = messages[-1]["seq"] if page.has_more and messages else None
        return Response({
            "conversation": page.conversation_id, "after_seq": after_seq, "last_seq": page.last_seq,
            "has_more": page.has_more, "next_after_seq": next_after, "results": messages,
        })

    @extend_schema(request=MessageSendInput, responses={201: OpenApiTypes.OBJECT, 200: OpenApiTypes.OBJECT},
                   summary="Send a message (idempotent per client_msg_id)")
    def post(self, request, conversation_id: int):
        data = MessageSendInput(data=request.data)
        data.is_valid(raise_exception=True)
        # No access_* fetch: the service authorises the sender under the conversation lock.
        result = services.message_send(sender=request.user, conversation_id=conversation_id, **data.validated_data)
        ack = events.message_ack_payload(result.message) | {"duplicate": not result.created}
        return Response(ack, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


# --- feedback and notes ------------------------------------------------------------------
class FeedbackInput(serializers.Serializer):
    rating = serializers.IntegerField(min_value=1, max_value=5)
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class FeedbackView(APIView):
    @extend_schema(request=FeedbackInput, responses={201: OpenApiTypes.OBJECT}, summary="Post-session feedback")
    def post(self, request, session_id: int):
        session = access_session_for_young_person(user=request.user, session_id=session_id)
        data = FeedbackInput(data=request.data)
        data.is_valid(raise_exception=True)
        feedback = services.feedback_submit(session=session, **data.validated_data)
        return Response({"id": feedback.id, "session": session.id, "rating": feedback.rating}, status=201)


class NoteInput(serializers.Serializer):
    body = serializers.CharField(max_length=services.NOTE_MAX_CHARS)


def _note(note: CaseNote) -> dict:
    return {"id": note.id, "session": note.session_id, "author": events.user_brief(note.author), "body": note.body,
            "created_at": note.created_at.isoformat()}


class NotesView(APIView):
    @extend_schema(responses=OpenApiTypes.OBJECT, summary="Case notes (counsellors who took part, supervisors)")
    def get(self, request, session_id: int):
        session = access_session_for_staff(user=request.user, session_id=session_id)
        return Response({"results": [_note(n) for n in session.notes.select_related("author")]})

    @extend_schema(request=NoteInput, responses={201: OpenApiTypes.OBJECT}, summary="Add a case note")
    def post(self, request, session_id: int):
        session = access_session_for_staff(user=request.user, session_id=session_id)
        data = NoteInput(data=request.data)
        data.is_valid(raise_exception=True)
        note = services.note_add(session=session, author=request.user, body=data.validated_data["body"])
        return Response(_note(note), status=201)


# --- the protocol document ------------------------------------------------------------------
class AsyncApiView(APIView):
    """The websocket protocol as AsyncAPI 3 (docs/asyncapi.yaml), for client generators."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(responses={(200, "application/yaml"): OpenApiTypes.STR}, summary="AsyncAPI 3 document of /ws/")
    def get(self, request):
        return HttpResponse(ASYNCAPI_PATH.read_text(encoding="utf-8"), content_type="application/yaml; charset=utf-8")
