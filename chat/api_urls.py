"""Chat REST routes under /api/v1/ (included by api/urls.py)."""

from django.urls import path

from . import views

urlpatterns = [
    path("chat/sessions/", views.SessionListView.as_view(), name="chat-sessions"),
    path("chat/sessions/accept/", views.SessionAcceptView.as_view(), name="chat-session-accept"),
    path("chat/sessions/<int:session_id>/", views.SessionDetailView.as_view(), name="chat-session"),
    path("chat/sessions/<int:session_id>/end/", views.SessionEndView.as_view(), name="chat-session-end"),
    path("chat/sessions/<int:session_id>/feedback/", views.FeedbackView.as_view(), name="chat-session-feedback"),
    path("chat/sessions/<int:session_id>/notes/", views.NotesView.as_view(), name="chat-session-notes"),
    path("chat/status/", views.CounsellorStatusView.as_view(), name="chat-status"),
    path("chat/queue/", views.QueueView.as_view(), name="chat-queue"),
    path("chat/conversations/<int:conversation_id>/messages/", views.MessagesView.as_view(), name="chat-messages"),
    path("asyncapi.yaml", views.AsyncApiView.as_view(), name="asyncapi"),
]
