"""eventjobs models: the job half (jobs.py) and the event half (events.py)."""

from .jobs import Job, JobStatus, Worker

__all__ = ["Job", "JobStatus", "Worker"]
