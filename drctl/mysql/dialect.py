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
