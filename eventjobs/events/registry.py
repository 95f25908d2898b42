"""The consumer registry: `@eventjobs.consumer(...)` handlers, grouped by consumer group.

Handlers are registered when their module is imported; eventjobs' AppConfig.ready()
imports the `consumers` module of every installed app. Only this decorator registers
anything, so importing a Django Channels `consumers.py` is harmless.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from eventjobs.conf import count, seconds_or_zero
from eventjobs.events.partitions import type_matcher

_GROUP_NAME = re.compile(r"^[A-Za-z0-9_.:\-]{1,200}$")
STARTS = ("earliest", "latest")


@dataclass(frozen=True)
class Handler:
    """One registered handler function and its options."""

    group: str
    func: Callable
    types: tuple[str, ...] | None
    max_attempts: int
    retry_backoff: float
    path: str

    def matches(self, event_type: str) -> bool:
        return type_matcher(self.types)(event_type)


@dataclass
class Group:
    """A consumer group: its handlers and where it starts when first run."""

    name: str
    start: str = "earliest"
    handlers: list[Handler] = field(default_factory=list)

    @property
    def types(self) -> tuple[str, ...] | None:
        """The union of the handlers' types (None: all events)."""
        if any(h.types is None for h in self.handlers):
            return None
        return tuple(sorted({t for h in self.handlers for t in h.types or ()}))

    def dispatch_table(self) -> Callable[[str], tuple[Handler, ...]]:
        """event type -> the handlers to run, cached per type (the hot path calls this)."""
        cache: dict[str, tuple[Handler, ...]] = {}
        handlers = list(self.handlers)

        def lookup(event_type: str) -> tuple[Handler, ...]:
            found = cache.get(event_type)
            if found is None:
                found = cache[event_type] = tuple(h for h in handlers if h.matches(event_type))
            return found

        return lookup


_registry: dict[str, Group] = {}


def _normalise_types(types: str | Iterable[str] | None) -> tuple[str, ...] | None:
    if types is None:
        return None
    if isinstance(types, str):
        types = [types]
    result = tuple(types)
    for t in result:
        if not isinstance(t, str) or not t or "*" in t[:-1]:
            raise ImproperlyConfigured(f"consumer types must be event type names or prefixes "
                                       f"like 'post.*'; got {t!r}")
    return result


def consumer(group: str, types: str | Iterable[str] | None = None, *, max_attempts: int = 3,
             retry_backoff: float = 2, start: str = "earliest") -> Callable[[Callable], Callable]:
    """Register `def handler(event)` in consumer group `group` for `types` (None: all;
    `post.*` is a prefix). A failing event is retried `max_attempts` times in all, with
    exponential backoff from `retry_backoff` seconds, then dead-lettered. `start`
    ("earliest" or "latest") is where a new group begins."""
    if not isinstance(group, str) or not _GROUP_NAME.match(group):
        raise ImproperlyConfigured(f"consumer group name {group!r}: use 1-200 letters, digits "
                                   "and _ . : -")
    normalised = _normalise_types(types)
    max_attempts = _option("max_attempts", max_attempts, count(1),
                           "it counts the first run")
    retry_backoff = _option("retry_backoff", retry_backoff, seconds_or_zero,
                            "seconds before the first retry, doubling after")
    if start not in STARTS:
        raise ImproperlyConfigured(f"start must be one of {STARTS}, got {start!r}")

    def register(func: Callable) -> Callable:
        path = f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', repr(func))}"
        _refuse_async(func, group, path)
        entry = _registry.setdefault(group, Group(group, start))
        if entry.handlers and entry.start != start and start != "earliest":
            raise ImproperlyConfigured(f"consumer group {group!r}: handlers disagree on start "
                                       f"({entry.start!r} vs {start!r})")
        if start != "earliest":
            entry.start = start
        handler = Handler(group, func, normalised, max_attempts, retry_backoff, path)
        # A module imported twice (e.g. under two names) must not register twice.
        entry.handlers = [h for h in entry.handlers if h.path != path] + [handler]
        return func

    return register


def _option(name: str, value: Any, parse: Callable[[Any], Any], meaning: str) -> Any:
    try:
        return parse(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"@consumer({name}=...): {name} {exc} ({meaning})") from None


def _refuse_async(func: Callable, group: str, path: str) -> None:
    """A batch runs its handlers inside one database transaction on one connection, and
    never awaits: an `async def` handler would only create a coroutine, its body would
    never run, and the group would move past the event. Refuse it at import time."""
    call = getattr(func, "__call__", None)  # noqa: B004 - a callable object's own method
    if (inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func)
            or (not inspect.isroutine(func) and inspect.iscoroutinefunction(call))):
        raise ImproperlyConfigured(
            f"consumer {path} (group {group!r}) is an async function; event handlers run "
            "inside the batch's database transaction and must be plain `def` functions. "
            "Write `def`, and call async code with asgiref.sync.async_to_sync(...) inside it "
            "(or enqueue a job for it).")


def groups() -> dict[str, Group]:
    """All registered consumer groups, by name."""
    return dict(_registry)


def get_group(name: str) -> Group:
    try:
        return _registry[name]
    except KeyError:
        known = ", ".join(sorted(_registry)) or "none"
        raise ImproperlyConfigured(
            f"no consumer registered for group {name!r} (registered: {known}); consumers "
            "live in a `consumers.py` module of an installed app") from None


def autodiscover() -> None:
    """Import every installed app's `consumers` module (called from AppConfig.ready)."""
    from django.utils.module_loading import autodiscover_modules

    autodiscover_modules("consumers")
