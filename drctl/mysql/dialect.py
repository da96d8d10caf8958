"""The SQL dialects drctl speaks to database servers, one per server family and syntax generation.

Alone in a module so the GTID arithmetic (`gtid`) can tell MySQL from MariaDB without importing the
replication SQL; `replication.detect_dialect` reads a server's from its version.
"""

from __future__ import annotations

import enum


class Dialect(enum.Enum):
    MYSQL_80 = "mysql-8.0"  # 8.0.23 to 8.1
    MYSQL_84 = "mysql-8.4"  # 8.2 and later, including 8.4 LTS and 9.x
    MARIADB = "mariadb"  # 10.5 and later, including 10.11 LTS

    @property
    def is_mariadb(self) -> bool:
        return self is Dialect.MARIADB

    @property
    def family(self) -> str:
        """"mariadb" or "mysql": what a binlog archive and a scratch server name (binlog_events.Flavour)."""
        return "mariadb" if self.is_mariadb else "mysql"


FAMILIES = ("mariadb", "mysql")


def binlog_position_sql(family: str) -> str:
    """The query whose one value is every transaction the server's own binary log has reached, in
    the form its archive's positions take: MariaDB's @@gtid_binlog_pos (the last GTID per domain
    its binlog holds; @@gtid_current_pos would add what it applied as a replica without logging),
    MySQL's @@gtid_executed (a GTID set; with log_bin on, what the binlog holds plus gtid_purged)."""
    if family not in FAMILIES:
        raise ValueError(f"not a database server family: {family!r} (allowed: {', '.join(FAMILIES)})")
    return "SELECT @@GLOBAL.gtid_binlog_pos" if family == "mariadb" else "SELECT @@GLOBAL.gtid_executed"
