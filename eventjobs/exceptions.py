"""Exceptions raised by eventjobs; each has a one-line meaning."""


class InvalidPayload(ValueError):
    """An argument or event data cannot be stored as JSON exactly as given."""


class WorkerLost(Exception):
    """The worker running this attempt died or lost its lease before finishing."""


class JobTimeout(Exception):
    """The attempt ran longer than its timeout and its process was killed."""


class JobCancelled(Exception):
    """The job was cancelled by hand before it finished."""


class TaskNotFound(Exception):
    """The job's task path no longer imports (e.g. a rolling deploy removed it)."""
