from django.urls import path

from . import views

urlpatterns = [
    path("", views.HomePage.as_view(), name="home"),
    path("chat/", views.ChatPage.as_view(), name="web-chat"),
    path("forums/", views.ForumsPage.as_view(), name="web-forums"),
    path("counsellor/", views.CounsellorPage.as_view(), name="web-counsellor"),
    path("moderator/", views.ModeratorPage.as_view(), name="web-moderator"),
    path("clinician/", views.ClinicianPage.as_view(), name="web-clinician"),
]
