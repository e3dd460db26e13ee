"""Persistence of analyses (and their jobs) through SQLAlchemy 2.

SQLite file by default (``sqlite:///<data_dir>/agrostress.db``, WAL mode), any SQLAlchemy URL
otherwise (e.g. ``postgresql+psycopg://user:pw@host/db``). One row per analysis holds the
checked request, the job state (status, progress, owner process and heartbeat, attempts), the
result and the error. Every method opens its own short transaction, so the store is safe to
use from the job threads.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    Integer,
    String,
    Text,
    create_engine,
    delete,
    event,
    func,
    inspect,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

ACTIVE = ("queued", "running")


def utcnow() -> dt.datetime:
    """Now, UTC, naive (stored as such in every backend)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def new_id() -> str:
    """A fresh analysis id (uuid4, 32 lowercase hex digits)."""
    return uuid.uuid4().hex


class Base(DeclarativeBase):
    pass


class AnalysisRow(Base):
    """One analysis and its job."""

    __tablename__ = "analyses"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    stage: Mapped[str | None] = mapped_column(String(32), nullable=True)
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    model_id: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[str] = mapped_column(String(64), default="")
    model_name: Mapped[str] = mapped_column(String(128), default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    owner: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    #: the client (API key) that submitted it; None for rows from before clients existed
    client: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)

    def to_dict(self) -> dict[str, Any]:
        return {c.name: getattr(self, c.name) for c in self.__table__.columns}


def default_url(data_dir: Path) -> str:
    """``sqlite:///<data_dir>/agrostress.db`` (absolute)."""
    return f"sqlite:///{(Path(data_dir) / 'agrostress.db').resolve()}"


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and thread sharing."""
    u = make_url(url)
    if u.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if u.database and u.database != ":memory:":
        Path(u.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _: Any) -> None:  # pragma: no cover - trivial
        cur = dbapi_conn.cursor()
        if u.database and u.database != ":memory:":
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    return engine


class Store:
    """The analyses table."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        Base.metadata.create_all(self.engine)
        self._add_missing_columns()

    def _add_missing_columns(self) -> None:
        """Columns added since a database was created (nullable, so old rows stay valid)."""
        present = {c["name"] for c in inspect(self.engine).get_columns(AnalysisRow.__tablename__)}
        with self.engine.begin() as conn:
            for column in AnalysisRow.__table__.columns:
                if column.name not in present and column.nullable:
                    kind = column.type.compile(dialect=self.engine.dialect)
                    conn.execute(text(f"ALTER TABLE {AnalysisRow.__tablename__} "
                                      f"ADD COLUMN {column.name} {kind}"))

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> None:
        """Raise if the database cannot be reached."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    # ----------------------------------------------------------------- rows

    def create(self, request: dict[str, Any], model: dict[str, str], owner: str,
               client: str | None = None) -> dict[str, Any]:
        now = utcnow()
        row = AnalysisRow(
            id=new_id(),
            client=client,
            status="queued",
            progress=0.0,
            stage="queued",
            request=request,
            model_id=model["id"],
            model_name=model["name"],
            model_version=model["version"],
            attempts=0,
            owner=owner,
            heartbeat_at=now,
            created_at=now,
            updated_at=now,
        )
        with Session(self.engine) as s, s.begin():
            s.add(row)
            s.flush()
            return row.to_dict()

    def delete(self, analysis_id: str) -> bool:
        """Remove a row (a request refused after it was written: it leaves nothing)."""
        with Session(self.engine) as s, s.begin():
            return s.execute(delete(AnalysisRow).where(AnalysisRow.id == analysis_id)).rowcount == 1

    def get(self, analysis_id: str, client: str | None = None) -> dict[str, Any] | None:
        """The row, or None; with ``client``, only when that client submitted it."""
        with Session(self.engine) as s:
            row = s.get(AnalysisRow, analysis_id)
            if row is None or (client is not None and row.client != client):
                return None
            return row.to_dict()

    def finished_before(self, before: dt.datetime) -> list[str]:
        """Ids of the analyses that finished (done or failed) before ``before``."""
        q = select(AnalysisRow.id).where(AnalysisRow.status.not_in(ACTIVE),
                                         AnalysisRow.finished_at < before)
        with Session(self.engine) as s:
            return list(s.scalars(q))

    def statuses(self, ids: list[str]) -> dict[str, tuple[str, dt.datetime | None]]:
        """{id: (status, finished_at)} of the rows among ``ids`` that exist."""
        out: dict[str, tuple[str, dt.datetime | None]] = {}
        with Session(self.engine) as s:
            for i in range(0, len(ids), 500):
                q = select(AnalysisRow.id, AnalysisRow.status, AnalysisRow.finished_at).where(
                    AnalysisRow.id.in_(ids[i:i + 500]))
                out.update({r.id: (r.status, r.finished_at) for r in s.execute(q)})
        return out

    def list_rows(
        self, *, limit: int = 20, offset: int = 0, status: str | None = None,
        client: str | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """A page of rows (newest first) and the total; ``client``: only that client's."""
        q = select(AnalysisRow)
        c = select(func.count()).select_from(AnalysisRow)
        if status:
            q, c = q.where(AnalysisRow.status == status), c.where(AnalysisRow.status == status)
        if client is not None:
            q, c = q.where(AnalysisRow.client == client), c.where(AnalysisRow.client == client)
        q = q.order_by(AnalysisRow.created_at.desc(), AnalysisRow.id).limit(limit).offset(offset)
        with Session(self.engine) as s:
            return [r.to_dict() for r in s.scalars(q)], int(s.scalar(c) or 0)

    def update(self, analysis_id: str, *, owner: str | None = None, **values: Any) -> bool:
        """Set ``values``; with ``owner``, only while that process owns the row."""
        values.setdefault("updated_at", utcnow())
        stmt = update(AnalysisRow).where(AnalysisRow.id == analysis_id)
        if owner is not None:
            stmt = stmt.where(AnalysisRow.owner == owner)
        with Session(self.engine) as s, s.begin():
            return s.execute(stmt.values(**values)).rowcount == 1

    # ----------------------------------------------------------------- job ownership

    def heartbeat(self, owner: str) -> None:
        """Refresh the heartbeat of the active jobs ``owner`` holds."""
        now = utcnow()
        stmt = (
            update(AnalysisRow)
            .where(AnalysisRow.owner == owner, AnalysisRow.status.in_(ACTIVE))
            .values(heartbeat_at=now)
        )
        with Session(self.engine) as s, s.begin():
            s.execute(stmt)

    def release(self, owner: str) -> int:
        """Give up ``owner``'s active jobs so that the next process takes them over at once."""
        stmt = (
            update(AnalysisRow)
            .where(AnalysisRow.owner == owner, AnalysisRow.status.in_(ACTIVE))
            .values(owner=None, heartbeat_at=None, updated_at=utcnow())
        )
        with Session(self.engine) as s, s.begin():
            return int(s.execute(stmt).rowcount or 0)

    def orphans(self, stale_before: dt.datetime) -> list[dict[str, Any]]:
        """Active jobs whose owner is gone (released, or silent since ``stale_before``)."""
        q = select(AnalysisRow).where(
            AnalysisRow.status.in_(ACTIVE),
            or_(
                AnalysisRow.owner.is_(None),
                AnalysisRow.heartbeat_at.is_(None),
                AnalysisRow.heartbeat_at < stale_before,
            ),
        )
        with Session(self.engine) as s:
            return [r.to_dict() for r in s.scalars(q)]

    def claim(self, row: dict[str, Any], owner: str, **values: Any) -> bool:
        """Take over an orphan atomically (fails if another process changed it first)."""
        stmt = update(AnalysisRow).where(AnalysisRow.id == row["id"], AnalysisRow.status.in_(ACTIVE))
        stmt = stmt.where(
            AnalysisRow.owner.is_(None) if row["owner"] is None else AnalysisRow.owner == row["owner"]
        )
        hb = row["heartbeat_at"]
        stmt = stmt.where(
            AnalysisRow.heartbeat_at.is_(None) if hb is None else AnalysisRow.heartbeat_at == hb
        )
        now = utcnow()
        values = {"owner": owner, "heartbeat_at": now, "updated_at": now, **values}
        with Session(self.engine) as s, s.begin():
            return s.execute(stmt.values(**values)).rowcount == 1
