"""A table-less model that gives the admin's overview page its place in the admin index
(`/admin/eventjobs/overview/`). It has no rows and no permissions of its own: the page
shows each part to those who may view the models it summarises."""

from __future__ import annotations

from django.db import models


class Overview(models.Model):
    """The eventjobs overview page (jobs, groups and workers at a glance)."""

    class Meta:
        managed = False
        db_table = "eventjobs_overview_unused"
        default_permissions = ()
        verbose_name = "overview"
        verbose_name_plural = "overview"
