"""The eventjobs admin: jobs, dead letters, consumer groups, events, workers and an
overview page, registered on Django's default admin site (app label `eventjobs`).

Each module registers one model's ModelAdmin; Django's admin autodiscovery imports this
package. See docs/admin.md.
"""

from __future__ import annotations

from eventjobs.admin import (  # noqa: F401
    deadletters,
    events,
    groups,
    jobs,
    overview,
    queues,
    workers,
)
