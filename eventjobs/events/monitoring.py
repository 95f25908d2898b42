"""Consumer-group state for `eventjobs_status --json` (its "groups" part).

Per group: position (the slowest partition's: everything before it is handled; None and
"started": false for a group that never ran, whose lag is then what it will handle), lag
(events the group will still handle, matching its types, exact up to LAG_CAP and then
reported as LAG_CAP with "lag_capped": true), open dead letters, paused, and
`held_back_by`: the oldest open transaction when it keeps committed events from the
group (it holds the cluster's snapshot horizon) for longer than HELD_BACK_AFTER_SECONDS;
without the rights to see that session, its xid and when the horizon was first seen
stuck there (recorded on the group).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg
from django.db.models import Count

from eventjobs.conf import database_alias, eventjobs_settings
from eventjobs.db import django_connection
from eventjobs.events import controlstore, store
from eventjobs.events.partitions import START, Position, show_position
from eventjobs.events.registry import Group
from eventjobs.events.registry import groups as registered_groups


def held_back_by(conn: psycopg.Connection, group: str, after: Position, *,
                 min_seconds: float = 0.0, cache: dict[str, Any] | None = None
                 ) -> dict[str, Any] | None:
    """What keeps `group`'s committed events past `after` from being read, or None.

    Records the horizon it waits behind (and since when) on the group. Names the holding
    transaction's session when it is visible (pg_read_all_stats, or the same user);
    otherwise reports the xid with "visible": false and when it was first seen stuck."""
    watch = store.watch_horizon(conn, group=group, after=after)
    if watch is None:
        return None
    xid, first_seen, waited = watch
    if cache is not None and cache.get("cached") is not None:
        holder = cache["cached"]
    else:
        holder = controlstore.horizon_holder(conn) or {}
        if cache is not None:
            cache["cached"] = holder
    # pg_stat_activity shows 32-bit xids; the horizon is an xid8 (epoch in the high half).
    if holder and holder.get("xid") is not None and int(holder["xid"]) == xid & 0xFFFFFFFF:
        return {**holder, "visible": True} if holder.get("seconds", 0) >= min_seconds else None
    if waited < min_seconds:
        return None
    return {"pid": None, "xid": str(xid), "since": first_seen.isoformat(),
            "seconds": round(waited, 3), "visible": False,
            "hint": "who holds it is visible only with the pg_read_all_stats role; "
                    "\"since\" is when eventjobs first saw the horizon stuck"}


def _pending_for_new_group(conn: psycopg.Connection, group: Group | None, cap: int
                           ) -> tuple[int, bool]:
    """What a group that never ran will handle when it starts: (count, capped). It reads at
    most `cap` events from the start of the log (no index serves a type filter, and a full
    count of a big log is not worth a status call): `capped` means "at least"."""
    if group is None or group.start == "latest":
        return 0, False
    return controlstore.pending_for_new_group(conn, types=group.types, cap=cap)


def groups_status(names: Iterable[str] | None = None) -> dict:
    """{group: {position, lag, dead_letters, paused, held_back_by, ...}} for every group
    that has cursors or is registered in this process (only `names`, when given: the
    admin asks for one page of groups; each group costs a few indexed queries)."""
    from eventjobs.models import ConsumerGroup, DeadLetter, DeadLetterStatus, GroupMember

    alias = database_alias()
    opts = eventjobs_settings()
    conn = django_connection(alias)
    registered = registered_groups()
    dead = dict(DeadLetter.objects.using(alias).filter(status=DeadLetterStatus.OPEN).values("group")
                .annotate(n=Count("id")).values_list("group", "n").order_by())
    members = dict(GroupMember.objects.using(alias).values("group").annotate(n=Count("id"))
                   .values_list("group", "n").order_by())
    stored = {g.name: g for g in ConsumerGroup.objects.using(alias).order_by("name")}
    wanted = set(stored) | set(registered)
    if names is not None:
        wanted &= set(names)
    holder = None
    pending_cache: dict = {}
    result = {}
    for name in sorted(wanted):
        group = stored.get(name)
        types = registered[name].types if name in registered else None
        cursors = store.cursors_of_group(conn, name) if group else []
        low = min(((c["txid"], c["event_id"]) for c in cursors), default=START)
        n = group.partitions if group else opts.partitions
        capped = False
        if cursors:
            lag = controlstore.group_lag(conn, group=name, after=low, n=n, types=types,
                                       cap=opts.lag_cap)
        else:
            # Groups that never ran and read the same types wait for the same events.
            in_code = registered.get(name)
            key = (in_code.start, in_code.types) if in_code is not None else None
            if key not in pending_cache:
                pending_cache[key] = _pending_for_new_group(conn, in_code, opts.lag_cap)
            lag, capped = pending_cache[key]
        held = None
        if cursors:
            if holder is None:
                holder = {"cached": None}
            held = held_back_by(conn, name, low, min_seconds=opts.held_back_after_seconds,
                                cache=holder)
        result[name] = {
            "position": show_position(low) if cursors else None,
            "started": bool(cursors),
            "lag": lag,
            "lag_capped": capped or lag >= opts.lag_cap,
            "dead_letters": dead.get(name, 0),
            "paused": any(c["paused"] for c in cursors),
            "held_back_by": held,
            "partitions": n,
            "members": members.get(name, 0),
            "recent_errors": (group.recent_errors if group else [])[:5],
        }
    return result
