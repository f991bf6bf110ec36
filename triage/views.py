"""REST for escalations and the duty rota. Each view: validate, call one service, serialize."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import rota
from accounts.models import Role, Shift, Tier, User
from config.exceptions import NotFound, ValidationFailed, WrongRole

from . import escalations as svc
from .models import EscalationAudit, Outcome

_SNAPSHOT_FIELDS = {
    "id": serializers.IntegerField(),
    "level": serializers.CharField(),
    "categories": serializers.ListField(child=serializers.CharField()),
    "evidence": serializers.ListField(child=serializers.DictField()),
    "message": serializers.CharField(),
    "source": serializers.DictField(),
    "young_person": serializers.DictField(),
    "state": serializers.CharField(),
    "owner": serializers.DictField(allow_null=True),
    "step": serializers.IntegerField(),
    "created_at": serializers.DateTimeField(),
    "ack_deadline": serializers.DateTimeField(),
}
SNAPSHOT = inline_serializer("Escalation", _SNAPSHOT_FIELDS)
SNAPSHOTS = inline_serializer(
    "EscalationList", {"results": inline_serializer("EscalationItem", _SNAPSHOT_FIELDS, many=True)}
)


class EscalationListView(APIView):
    @extend_schema(
        responses={200: SNAPSHOTS}, operation_id="escalations_list", summary="Open and acknowledged escalations (for reconnects)"
    )
    def get(self, request: Request) -> Response:
        items = svc.escalation_list_open(user=request.user)
        return Response(
            {
                "results": [svc.escalation_snapshot(e) for e in items],
                "nobody_on_duty": svc.nobody_on_duty(),
            }
        )


class EscalationDetailView(APIView):
    @extend_schema(
        responses={200: SNAPSHOT}, summary="One escalation with context (the view is audited)"
    )
    def get(self, request: Request, escalation_id: int) -> Response:
        escalation = svc.access_escalation_for_staff(user=request.user, escalation_id=escalation_id)
        svc.escalation_record_view(user=request.user, escalation=escalation)
        return Response(
            {**svc.escalation_snapshot(escalation), "context": svc.escalation_context(escalation)}
        )


class EscalationAcknowledgeView(APIView):
    @extend_schema(
        request=None, responses={200: SNAPSHOT}, summary="Acknowledge and own (first one wins)"
    )
    def post(self, request: Request, escalation_id: int) -> Response:
        return Response(
            svc.escalation_snapshot(
                svc.escalation_acknowledge(user=request.user, escalation_id=escalation_id)
            )
        )


class EscalationNoteInput(serializers.Serializer):
    body = serializers.CharField(max_length=4000)


class EscalationNoteView(APIView):
    @extend_schema(request=EscalationNoteInput, responses={201: None}, summary="Add a note")
    def post(self, request: Request, escalation_id: int) -> Response:
        data = EscalationNoteInput(data=request.data)
        data.is_valid(raise_exception=True)
        note = svc.escalation_note_add(
            user=request.user, escalation_id=escalation_id, body=data.validated_data["body"]
        )
        return Response(
            {"id": note.id, "body": note.detail["body"]}, status=status.HTTP_201_CREATED
        )


class EscalationHandoverInput(serializers.Serializer):
    to = serializers.IntegerField(help_text="user id of the clinician taking over")
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class EscalationHandoverView(APIView):
    @extend_schema(
        request=EscalationHandoverInput, responses={200: SNAPSHOT}, summary="Hand over to another clinician"
    )
    def post(self, request: Request, escalation_id: int) -> Response:
        data = EscalationHandoverInput(data=request.data)
        data.is_valid(raise_exception=True)
        escalation = svc.escalation_handover(
            user=request.user,
            escalation_id=escalation_id,
            to_user_id=data.validated_data["to"],
            note=data.validated_data["note"],
        )
        return Response(svc.escalation_snapshot(escalation))


class EscalationResolveInput(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=Outcome.choices)
    note = serializers.CharField(max_length=4000, required=False, allow_blank=True, default="")


class EscalationResolveView(APIView):
    @extend_schema(
        request=EscalationResolveInput, responses={200: SNAPSHOT}, summary="Resolve with an outcome"
    )
    def post(self, request: Request, escalation_id: int) -> Response:
        data = EscalationResolveInput(data=request.data)
        data.is_valid(raise_exception=True)
        escalation = svc.escalation_resolve(
            user=request.user, escalation_id=escalation_id, **data.validated_data
        )
        return Response(svc.escalation_snapshot(escalation))


class AuditOutput(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor.handle", default=None)

    class Meta:
        model = EscalationAudit
        fields = ["id", "action", "actor", "detail", "created_at"]


class EscalationAuditView(APIView):
    @extend_schema(responses={200: AuditOutput(many=True)}, summary="Audit trail (supervisors)")
    def get(self, request: Request, escalation_id: int) -> Response:
        if request.user.role not in (Role.SUPERVISOR, Role.ADMIN):
            raise WrongRole("Only supervisors read the audit trail.")
        escalation = svc.access_escalation_for_staff(user=request.user, escalation_id=escalation_id)
        return Response(AuditOutput(escalation.audit.select_related("actor"), many=True).data)


# --- rota ------------------------------------------------------------------------------
ROTA_MANAGERS = (Role.SUPERVISOR, Role.ADMIN)


def _require_rota_reader(user: User) -> None:
    if user.role not in (*svc.ESCALATION_ROLES, Role.COUNSELLOR):
        raise WrongRole("The rota is for staff.")


class ShiftOutput(serializers.ModelSerializer):
    clinician = serializers.CharField(source="clinician.handle")

    class Meta:
        model = Shift
        fields = ["id", "clinician", "tier", "start", "end"]


class ShiftInput(serializers.Serializer):
    clinician = serializers.CharField(help_text="handle")
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    tier = serializers.ChoiceField(choices=Tier.choices)


class ShiftListView(APIView):
    @extend_schema(responses={200: ShiftOutput(many=True)}, summary="Shifts from now on")
    def get(self, request: Request) -> Response:
        _require_rota_reader(request.user)
        shifts = Shift.objects.select_related("clinician").filter(end__gt=timezone.now())[:500]
        return Response(ShiftOutput(shifts, many=True).data)

    @extend_schema(
        request=ShiftInput, responses={201: ShiftOutput}, summary="Add a shift (supervisors)"
    )
    def post(self, request: Request) -> Response:
        if request.user.role not in ROTA_MANAGERS:
            raise WrongRole("Only supervisors manage the rota.")
        data = ShiftInput(data=request.data)
        data.is_valid(raise_exception=True)
        clinician = User.objects.filter(handle__iexact=data.validated_data.pop("clinician")).first()
        if clinician is None:
            raise ValidationFailed("No user with that handle.")
        shift = rota.shift_add(clinician=clinician, **data.validated_data)
        return Response(ShiftOutput(shift).data, status=status.HTTP_201_CREATED)


class ShiftDetailView(APIView):
    @extend_schema(responses={204: None}, summary="Remove a shift (supervisors)")
    def delete(self, request: Request, shift_id: int) -> Response:
        if request.user.role not in ROTA_MANAGERS:
            raise WrongRole("Only supervisors manage the rota.")
        shift = Shift.objects.filter(pk=shift_id).first()
        if shift is None:
            raise NotFound()
        rota.shift_delete(shift=shift)
        return Response(status=status.HTTP_204_NO_CONTENT)


class OnDutyView(APIView):
    @extend_schema(
        summary="Who is on duty now",
        responses={
            200: inline_serializer(
                "OnDuty",
                {"on_duty": serializers.ListField(child=serializers.DictField()), "nobody_on_duty": serializers.BooleanField()},
            )
        },
    )
    def get(self, request: Request) -> Response:
        _require_rota_reader(request.user)
        pairs = rota.on_duty()
        return Response(
            {
                "on_duty": [
                    {"id": u.id, "handle": u.handle, "display_name": u.display_name, "tier": t}
                    for u, t in pairs
                ],
                "nobody_on_duty": not any(t == Tier.PRIMARY for _, t in pairs),
            }
        )


class CoverageView(APIView):
    @extend_schema(
        summary="Gaps without a primary clinician in the next days (default 7)",
        responses={
            200: inline_serializer(
                "Coverage", {"days": serializers.IntegerField(), "gaps": serializers.ListField(child=serializers.DictField())}
            )
        },
    )
    def get(self, request: Request) -> Response:
        _require_rota_reader(request.user)
        try:
            days = max(1, min(int(request.query_params.get("days", 7)), 31))
        except ValueError as exc:
            raise ValidationFailed("days must be a whole number") from exc
        gaps = rota.coverage_gaps(days=days)
        return Response(
            {
                "days": days,
                "gaps": [
                    {"start": g.start, "end": g.end, "hours": round(g.hours, 2)} for g in gaps
                ],
            }
        )
