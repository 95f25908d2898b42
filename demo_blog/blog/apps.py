from django.apps import AppConfig


class BlogConfig(AppConfig):
    name = "demo_blog.blog"
    label = "blog"
