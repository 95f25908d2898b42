"""Admin test helpers: users with exactly the permissions a test names, and a client that
enforces CSRF like a browser (the token comes from a page, as a form would send it)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

VIEW_ALL = ["eventjobs.view_job", "eventjobs.view_deadletter", "eventjobs.view_consumergroup",
            "eventjobs.view_event", "eventjobs.view_worker"]


def make_user(username: str, perms: list[str] = (), *, superuser: bool = False,
              staff: bool = True) -> User:
    user = User.objects.create_user(username, password=None, is_staff=staff,
                                    is_superuser=superuser)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label,
                                                         codename=codename))
    return user


class AdminClient(Client):
    """A logged-in client that checks CSRF; `post_form` sends the token a page set."""

    def __init__(self, user: User | None):
        super().__init__(enforce_csrf_checks=True)
        if user is not None:
            self.force_login(user)

    def token(self, page: str = "/admin/") -> str:
        self.get(page, follow=True)  # the login page sets one too
        return self.cookies["csrftoken"].value

    def post_form(self, url: str, data: dict, *, token: bool = True, follow: bool = False):
        if token:
            data = {**data, "csrfmiddlewaretoken": self.token(url)}
        return self.post(url, data, follow=follow)

    def action(self, model: str, action: str, ids: list, **extra):
        """POST an admin action on the changelist of `model`, as the action bar does."""
        return self.post_form(f"/admin/eventjobs/{model}/", {
            "action": action, "index": 0, "_selected_action": [str(i) for i in ids],
            **extra}, follow=True)


@pytest.fixture
def as_user(db):
    """as_user(*perms, superuser=False) -> an AdminClient logged in as a new staff user."""
    made = []

    def login(*perms: str, superuser: bool = False, staff: bool = True) -> AdminClient:
        user = make_user(f"user{len(made)}", list(perms), superuser=superuser, staff=staff)
        made.append(user)
        return AdminClient(user)

    return login


def action_choices(response) -> list[str]:
    """The action names offered in a changelist page's action dropdown."""
    form = response.context.get("action_form") if response.context else None
    if form is None:
        return []
    return [name for name, _ in form.fields["action"].choices if name]
