from django.urls import path

from . import api_views as v

urlpatterns = [
    path("forums/boards/", v.BoardListView.as_view(), name="forum-boards"),
    path("forums/boards/<int:board_id>/threads/", v.BoardThreadsView.as_view(), name="forum-board-threads"),
    path("forums/threads/<int:thread_id>/", v.ThreadDetailView.as_view(), name="forum-thread"),
    path("forums/threads/<int:thread_id>/posts/", v.ThreadPostsView.as_view(), name="forum-thread-posts"),
    path("forums/posts/<int:post_id>/", v.PostDetailView.as_view(), name="forum-post"),
    path("forums/posts/<int:post_id>/reactions/", v.ReactionsView.as_view(), name="forum-post-reactions"),
    path("forums/posts/<int:post_id>/reactions/<str:kind>/", v.ReactionDeleteView.as_view(), name="forum-post-reaction"),
    path("forums/notifications/", v.NotificationListView.as_view(), name="forum-notifications"),
    path("forums/notifications/read/", v.NotificationReadView.as_view(), name="forum-notifications-read"),
]
