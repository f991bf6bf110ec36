from django.urls import path

from . import api_views as v

urlpatterns = [
    path("moderation/items/", v.ItemListView.as_view(), name="moderation-items"),
    path("moderation/items/<int:item_id>/", v.ItemDetailView.as_view(), name="moderation-item"),
    path("moderation/items/<int:item_id>/claim/", v.ItemClaimView.as_view(), name="moderation-item-claim"),
    path("moderation/items/<int:item_id>/release/", v.ItemReleaseView.as_view(), name="moderation-item-release"),
    path("moderation/items/<int:item_id>/decide/", v.ItemDecideView.as_view(), name="moderation-item-decide"),
    path("moderation/reports/", v.ReportCreateView.as_view(), name="moderation-reports"),
    path("moderation/sanctions/", v.SanctionListView.as_view(), name="moderation-sanctions"),
    path("moderation/sanctions/<int:sanction_id>/appeal/", v.SanctionAppealView.as_view(), name="moderation-sanction-appeal"),
    path("moderation/appeals/", v.AppealListView.as_view(), name="moderation-appeals"),
    path("moderation/appeals/<int:appeal_id>/decide/", v.AppealDecideView.as_view(), name="moderation-appeal-decide"),
    path("moderation/watched-words/", v.WatchedWordListView.as_view(), name="moderation-watched-words"),
    path("moderation/watched-words/<int:word_id>/", v.WatchedWordDetailView.as_view(), name="moderation-watched-word"),
    path("moderation/metrics/", v.MetricsView.as_view(), name="moderation-metrics"),
    path("moderation/audit/", v.AuditListView.as_view(), name="moderation-audit"),
]
