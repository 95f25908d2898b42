from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_the_blog_models_and_migrations_agree():
    """makemigrations --check: no model change of the demo blog is missing a migration."""
    call_command("makemigrations", "blog", "--check", "--dry-run", stdout=StringIO())
