"""ASE's PostgreSQL backend (the ``ase-db-backends`` package, ASE >= 3.23), with what the store needs fixed.

* A failed transaction is rolled back: ase-db-backends' connection wrapper has no ``rollback``, so an exception
  inside ``with db:`` raised ``AttributeError`` instead, left the connection open and the half-written rows
  visible to the next call (and the next ``with db:`` failed its ``assert self.connection is None``).
* The id of a row just written is this session's (``currval``), not the sequence's last value, which another
  writer may have moved since (two writers got each other's ids back from ``write``).
* Creating the tables is serialised (an advisory lock): two processes opening a new database at once no
  longer both try to create them.
"""

from __future__ import annotations

import psycopg2
from ase_db_backends.postgresql import Connection, PostgreSQLDatabase

#: advisory-lock keys (any fixed 64-bit numbers; one per purpose)
INIT_LOCK = 0x6D6C706B00000001
WRITE_LOCK = 0x6D6C706B00000002


class _Connection(Connection):
    def rollback(self) -> None:
        self.con.rollback()


class PostgreSQLStore(PostgreSQLDatabase):
    """ase-db-backends' PostgreSQLDatabase with rollback, per-session ids and a safe first initialisation."""

    def _connect(self):
        return _Connection(psycopg2.connect(self.filename))

    def _initialize(self, con) -> None:
        if self.initialized:
            return
        con.cursor().execute(f"SELECT pg_advisory_xact_lock({INIT_LOCK})")
        super()._initialize(con)

    def get_last_id(self, cur) -> int:
        cur.execute("SELECT currval('systems_id_seq')")
        return int(cur.fetchone()[0])

    def lock_for_writing(self) -> None:
        """Inside ``with db:``: hold the store's write lock until this transaction ends."""
        self.connection.cursor().execute(f"SELECT pg_advisory_xact_lock({WRITE_LOCK})")
