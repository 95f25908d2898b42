"""eventjobs models: the job half (jobs.py) and the event half (events.py)."""

from __future__ import annotations

from .events import (
           ConsumerGroup,
           Cursor,
           DeadLetter,
           DeadLetterStatus,
           Delivery,
           Event,
           GroupMember,
)
from .jobs import Job, JobStatus, Queue, RateStart, Schedule, Worker
from .overview import Overview

__all__ = ["Job", "JobStatus", "Queue", "RateStart", "Schedule", "Worker", "Event",
           "ConsumerGroup", "Cursor", "GroupMember", "Delivery", "DeadLetter", "DeadLetterStatus",
           "Overview"]
