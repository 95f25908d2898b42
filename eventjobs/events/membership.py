"""A consume process's place in one consumer group: the group's creation, the process's
membership row, its partition leases and its fair share of partitions.

All of it runs on the process's autocommit control connection: each statement is its own
short transaction, so leases and membership never wait for a batch (claims pass the rows a
batch holds, with SKIP LOCKED). Each process has its own member id in each of its groups,
so one `consume` running several groups counts as a member of each.
"""

from __future__ import annotations

import logging
import time

import psycopg

from eventjobs.conf import EventjobsSettings
from eventjobs.events import store
from eventjobs.events.partitions import (
    START,
    Position,
    fair_share,
    partitions_in_words,
    position_in_words,
)
from eventjobs.events.registry import Group
from eventjobs.exceptions import GroupNotFound

logger = logging.getLogger("eventjobs.consume")


class ClusterMismatch(RuntimeError):
    """The group's cursors hold txids of another PostgreSQL cluster (dump/restore)."""


class Membership:
    """One group's partitions as one process sees them."""

    def __init__(self, group: Group, *, opts: EventjobsSettings, alias: str,
                 control: psycopg.Connection | None,
                 member: str, host: str, pid: int):
        self.group = group
        self.name = group.name
        self.opts = opts
        self.alias = alias
        self.control = control  # set by the process once it connects (None until then)
        self.member = member
        self.host = host
        self.pid = pid
        self.partitions = opts.partitions
        self.owned: dict[int, Position] = {}
        self.started = False
        self.forgotten = False  # `consumer_group forget` removed the group while we ran it
        self.careful_left = 0  # events to handle one at a time, counted (see GroupRunner)
        self.has_open_dead_letters = False
        self.next_heartbeat = 0.0
        self.burst_target: Position | None = None
        self.handled = 0
        self.dead_lettered = 0

    @property
    def control_connection(self) -> psycopg.Connection:
        """The control connection: the process connects it before it runs the group, and
        again after an outage before the next use."""
        assert self.control is not None, "the consume process connects before running a group"
        return self.control

    def start(self, system_id: int | None) -> None:
        """Create the group if new, check its cluster, join it."""
        created = store.create_group(self.control_connection, group=self.name,
                                     partitions=self.opts.partitions,
                                     start=self.group.start, system_id=system_id)
        loaded = store.load_group(self.control_connection, self.name)
        if loaded is None:  # `consumer_group forget` ran between our create and this read
            raise GroupNotFound(f"group {self.name} was forgotten (consumer_group forget) "
                                "while this process joined it; start consume again")
        partitions, stored_id = loaded
        self.partitions = partitions
        if created is not None:
            self._log_created(created)
        if stored_id is not None and system_id is not None and stored_id != system_id:
            raise ClusterMismatch(
                f"group {self.name}: its cursors were recorded on PostgreSQL cluster "
                f"{stored_id}, but this is cluster {system_id} (restored from a dump?). "
                f"Transaction ids differ between clusters; run `manage.py consumer_group "
                f"translate` once to re-anchor the cursors by event id.")
        if partitions != self.opts.partitions:
            logger.warning("group %s: has %s partitions (PARTITIONS setting is %s); the group "
                           "keeps the count it was created with", self.name, partitions,
                           self.opts.partitions)
        self.has_open_dead_letters = store.has_open_dead_letters(self.control_connection,
                                                                 self.name)
        self.started = True
        self.heartbeat()

    def _log_created(self, position: Position) -> None:
        if self.group.start == "latest":
            logger.info("group %s: new; starts at the end of the log (horizon txid %s): only "
                        "events committed from now on are handled", self.name, position[0])
        else:
            first = store.first_event(self.control_connection)
            logger.info("group %s: new; starts at the beginning of the retained log (%s)",
                        self.name, f"event #{first[0]}" if first else "empty so far")

    def heartbeat(self) -> bool:
        """Renew leases, take a fair share of partitions, give back the excess. False when
        the group no longer exists (forgotten while we ran it)."""
        c, name, member = self.control_connection, self.name, self.member
        lease = self.opts.consumer_lease_seconds
        if not store.register_member(c, member=member, group=name, host=self.host,
                                     pid=self.pid):
            self.forgotten = True
            return False
        live = store.live_members(c, group=name, member=member, lease=lease)
        target = fair_share(self.partitions, live)
        held = store.renew_leases(c, group=name, member=member, lease=lease)
        if len(held) > target:
            extra = sorted(held)[target:]
            store.release_partitions(c, group=name, member=member, partitions=extra)
            logger.info("group %s: %s live member(s); handing over partition(s) %s",
                        name, live, partitions_in_words(extra))
        elif len(held) < target:
            self._claim(target - len(held))
        # Record the horizon our committed events wait behind (and since when), for status
        # and the system check when nobody may see who holds it.
        store.watch_horizon(c, group=name, after=self.low())
        self.next_heartbeat = time.monotonic() + self.opts.consumer_heartbeat_seconds
        return True

    def _claim(self, wanted: int) -> None:
        claimed = store.claim_partitions(self.control_connection, group=self.name,
                                         member=self.member,
                                         lease=self.opts.consumer_lease_seconds, limit=wanted)
        if not claimed:
            return
        unclean = [p for p, previous in claimed if previous and previous != self.member]
        logger.info("group %s: took partition(s) %s%s", self.name,
                    partitions_in_words(p for p, _ in claimed),
                    f" (from a process that did not hand over: {partitions_in_words(unclean)}; "
                    "handling one event at a time for a while)" if unclean else "")
        if unclean:
            # The previous owner may have died inside a handler: count each delivery before
            # running it, until past its largest possible batch.
            self.careful_left = self.opts.batch_size

    def low(self) -> Position:
        """The slowest owned partition's position (START when we own none)."""
        return min(self.owned.values()) if self.owned else START

    def leave(self) -> None:
        """Graceful hand-over: release partitions (others start at our committed position).
        Never raises: at shutdown the database may be gone, and leases expire anyway."""
        try:
            store.release_partitions(self.control_connection, group=self.name, member=self.member,
                                     partitions=list(range(self.partitions)))
            store.deregister_member(self.control_connection, self.member)
        except Exception as exc:  # noqa: BLE001 - leases expire anyway
            logger.warning("group %s: could not hand over cleanly (%s); its leases expire in "
                           "%ss", self.name, str(exc).strip() or type(exc).__name__,
                           self.opts.consumer_lease_seconds)

    def burst_done(self) -> bool:
        """--burst: every event committed before the run started is handled or dead-lettered."""
        if self.burst_target is None or self.forgotten:
            return True
        pending = store.pending_partitions(self.control_connection, group=self.name,
                                           upto=self.burst_target, n=self.partitions)
        return not pending

    def describe(self) -> str:
        return (f"group {self.name}: partitions {partitions_in_words(self.owned)} at "
                f"{position_in_words(self.low())}, handled {self.handled}, dead-lettered "
                f"{self.dead_lettered}")
