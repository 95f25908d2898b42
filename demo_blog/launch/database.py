"""Finding the demo's PostgreSQL and creating its database: plain psycopg, before Django."""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg import sql


@dataclass(frozen=True)
class Target:
    """Where the demo's database lives (parsed from DATABASE_URL)."""

    host: str
    port: int
    user: str
    password: str | None
    name: str

    @classmethod
    def from_url(cls, url: str) -> Target:
        parts = urlsplit(url)
        if parts.scheme not in ("postgres", "postgresql", "pgsql"):
            raise ValueError(f"DATABASE_URL must be a postgres:// URL, got {url!r}")
        name = unquote(parts.path.lstrip("/")) or "eventjobs_demo"
        return cls(host=parts.hostname or "127.0.0.1", port=parts.port or 5432,
                   user=unquote(parts.username or "postgres"),
                   password=unquote(parts.password) if parts.password else None, name=name)

    def on_port(self, port: int) -> Target:
        return replace(self, host="127.0.0.1", port=port, user="postgres", password=None)

    @property
    def url(self) -> str:
        auth = self.user + (f":{self.password}" if self.password else "")
        return f"postgres://{auth}@{self.host}:{self.port}/{self.name}"

    @property
    def server(self) -> str:
        return f"{self.host}:{self.port}"

    def connect(self, dbname: str = "postgres", timeout: float = 3) -> psycopg.Connection:
        return psycopg.connect(host=self.host, port=self.port, user=self.user,
                               password=self.password, dbname=dbname,
                               connect_timeout=max(1, int(timeout)), autocommit=True)


def answers(target: Target) -> bool:
    """Whether a PostgreSQL server accepts our connection at the target's host and port."""
    try:
        with target.connect():
            return True
    except psycopg.OperationalError as exc:
        text = str(exc)
        # A server that answers but refuses us is there: the error will say why later.
        return "password authentication failed" in text or "does not exist" in text


def ensure_database(target: Target) -> bool:
    """Create the target database if it is missing; True when it was created. Either way
    a forgotten open transaction is ended after a minute, as eventjobs recommends (one
    would hold back every consumer group of the cluster)."""
    name = sql.Identifier(target.name)
    with target.connect() as conn:
        created = not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                   [target.name]).fetchone()
        if created:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
        conn.execute(sql.SQL("ALTER DATABASE {} SET idle_in_transaction_session_timeout "
                             "= '60s'").format(name))
        return created
