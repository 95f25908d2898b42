from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from demo_blog.blog import views

urlpatterns = [
    path("", views.home, name="home"),
    path("posts/new/", views.post_new, name="post_new"),
    path("posts/<int:pk>/", views.post_detail, name="post"),
    path("posts/<int:pk>/edit/", views.post_edit, name="post_edit"),
    path("posts/<int:pk>/publish/", views.post_publish, name="post_publish"),
    path("posts/<int:pk>/unpublish/", views.post_unpublish, name="post_unpublish"),
    path("posts/<int:pk>/delete/", views.post_delete, name="post_delete"),
    path("authors/<int:pk>/", views.author_detail, name="author"),
    path("search/", views.search_view, name="search"),
    path("search/rebuild/", views.rebuild_start, name="rebuild_start"),
    path("search/rebuilds/<int:pk>/", views.rebuild_detail, name="rebuild"),
    path("activity/", views.activity, name="activity"),
    path("activity/replay/", views.activity_replay, name="activity_replay"),
    path("how-it-works/", views.how_it_works, name="how_it_works"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
]
