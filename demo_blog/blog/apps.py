from __future__ import annotations

from django.apps import AppConfig


class BlogConfig(AppConfig):
    name = "demo_blog.blog"
    label = "blog"
    verbose_name = "Demo blog"
