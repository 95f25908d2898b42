from django.apps import AppConfig


class FakeChannelsConfig(AppConfig):
    """Stands in for Django Channels, whose app is named "channels", in a system check test."""

    name = "tests.testapp.fake_channels"
    label = "channels"
