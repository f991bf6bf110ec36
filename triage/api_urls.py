from django.urls import path

from . import views

urlpatterns = [
    path("escalations/", views.EscalationListView.as_view(), name="escalation-list"),
    path("escalations/<int:escalation_id>/", views.EscalationDetailView.as_view(), name="escalation-detail"),
    path("escalations/<int:escalation_id>/acknowledge/", views.EscalationAcknowledgeView.as_view()),
    path("escalations/<int:escalation_id>/notes/", views.EscalationNoteView.as_view()),
    path("escalations/<int:escalation_id>/handover/", views.EscalationHandoverView.as_view()),
    path("escalations/<int:escalation_id>/resolve/", views.EscalationResolveView.as_view()),
    path("escalations/<int:escalation_id>/audit/", views.EscalationAuditView.as_view()),
    path("rota/shifts/", views.ShiftListView.as_view(), name="rota-shifts"),
    path("rota/shifts/<int:shift_id>/", views.ShiftDetailView.as_view()),
    path("rota/on-duty/", views.OnDutyView.as_view(), name="rota-on-duty"),
    path("rota/coverage/", views.CoverageView.as_view(), name="rota-coverage"),
]
