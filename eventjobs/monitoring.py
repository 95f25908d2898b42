"""Consumer-group state for `eventjobs_status --json` (its "groups" part).

Per group: position (the slowest partition's: everything before it is handled), lag
(events the group will still handle, matching its types, exact up to LAG_CAP and then
reported as LAG_CAP with "lag_capped": true), open dead letters, paused, and
`held_back_by`: the oldest open transaction when it keeps committed events from the
group (it holds the cluster's snapshot horizon) for longer than HELD_BACK_AFTER_SECONDS.
"""

from __future__ import annotations

from django.db.models import Count

from . import eventstore
from .conf import database_alias
from .consuming import groups as registered_groups
from .eventconf import EventOptions
from .partitions import START, show_position


def groups_status() -> dict:
    """{group: {position, lag, dead_letters, paused, held_back_by, ...}} for every group
    that has cursors or is registered in this process."""
    from .models import ConsumerGroup, DeadLetter, GroupMember

    alias = database_alias()
    opts = EventOptions.load()
    conn = eventstore.raw_connection(alias)
    registered = registered_groups()
    dead = dict(DeadLetter.objects.using(alias).filter(status="open").values("group")
                .annotate(n=Count("id")).values_list("group", "n").order_by())
    members = dict(GroupMember.objects.using(alias).values("group").annotate(n=Count("id"))
                   .values_list("group", "n").order_by())
    stored = {g.name: g for g in ConsumerGroup.objects.using(alias).order_by("name")}
    holder = None
    result = {}
    for name in sorted(set(stored) | set(registered)):
        group = stored.get(name)
        types = registered[name].types if name in registered else None
        cursors = eventstore.cursors_of_group(conn, name) if group else []
        low = min(((c["txid"], c["event_id"]) for c in cursors), default=START)
        n = group.partitions if group else opts.partitions
        if cursors:
            lag = eventstore.group_lag(conn, group=name, after=low, n=n, types=types,
                                       cap=opts.lag_cap)
        else:
            lag = 0
        held = None
        if cursors and eventstore.waiting_above_horizon(conn, low):
            if holder is None:
                holder = eventstore.horizon_holder(conn) or {}
            if holder and holder.get("seconds", 0) >= opts.held_back_after_seconds:
                held = holder
        result[name] = {
            "position": show_position(low) if cursors else None,
            "lag": lag,
            "lag_capped": lag >= opts.lag_cap,
            "dead_letters": dead.get(name, 0),
            "paused": any(c["paused"] for c in cursors),
            "held_back_by": held,
            "partitions": n,
            "members": members.get(name, 0),
            "recent_errors": (group.recent_errors if group else [])[:5],
        }
    return result
