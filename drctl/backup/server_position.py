"""Where a live server's own binary log has got to, in the form the archive's positions take: a
MariaDB GTID position (`GtidPos`) or a MySQL GTID set (`MysqlGtidPos`), by the server's family.

The SQL is the dialect's (drctl/mysql/dialect.py); this module only reads and parses it, so the
restore drill (the primary's position after its orders) and the restore (the target's position
after each replayed file) ask the same question of either family.
"""

from __future__ import annotations

from drctl.backup.binlog_events import Flavour, GtidPos, MysqlGtidPos, parse_position
from drctl.mysql import replication
from drctl.mysql.dialect import binlog_position_sql


def server_flavour(conn) -> Flavour:
    """MariaDB or MySQL, as the server's version says."""
    return Flavour.of(replication.detect_dialect(conn))


def binlog_position(conn, flavour: Flavour) -> GtidPos | MysqlGtidPos:
    """Every transaction `conn`'s server has written to its binary log, as a `flavour` position."""
    return parse_position(flavour, str(replication.scalar(conn, binlog_position_sql(flavour.value)) or ""))
