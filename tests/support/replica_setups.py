"""Replica bootstraps against throwaway MariaDB servers, configured the way the database tier writes
`/etc/woocommerce-dr/bootstrap.json`: shared by the bootstrap tests and the /healthz tests, which
read what a real bootstrap left behind."""

from __future__ import annotations

from drctl.mysql import bootstrap as boot
from drctl.mysql import replication as r

ADMIN_PASSWORD, APP_PASSWORD, DRCTL_PASSWORD = "admin-pw", "app-pw", "drctl-pw"


def replica_config(tmp_path, primary, replica, *, replication_user="akmadmin",
                   required=r.REPLICATION_PRIVILEGES, server_id=2) -> boot.BootstrapConfig:
    admin = {"name": "akmadmin", "password": ADMIN_PASSWORD, "host": "127.0.0.1"}
    repl = admin if replication_user == "akmadmin" else {"name": replication_user, "password": "repl-pw"}
    return boot.BootstrapConfig.from_dict({
        "role": "replica", "region": "eu-west", "serverId": server_id,
        "statusFile": str(tmp_path / "replica-status.json"), "socket": replica.socket,
        "admin": {"name": "drctl", "password": DRCTL_PASSWORD, "host": "127.0.0.1"},
        "app": {"name": "woocommerce", "password": APP_PASSWORD, "host": "127.0.0.1"},
        "source": {"host": primary.host, "port": primary.port, "caFile": primary.tls.ca,
                   "admin": admin, "replication": repl, "requiredPrivileges": list(required)},
        "waitForSourceSeconds": 5, "replicationTimeoutSeconds": 20,
    })


def managed_like(tmp_path, primary, replica, admin_privileges="ALL PRIVILEGES ON *.*") -> boot.BootstrapConfig:
    """A primary holding two orders and a managed-style admin account (`akmadmin`, which also
    replicates); the replica's config to follow it."""
    primary.execute("CREATE DATABASE woocommerce",
                    "CREATE TABLE woocommerce.wp_wc_orders (id BIGINT PRIMARY KEY, total INT)",
                    "INSERT INTO woocommerce.wp_wc_orders VALUES (1, 100), (2, 200)")
    primary.create_user("akmadmin", ADMIN_PASSWORD, admin_privileges)
    return replica_config(tmp_path, primary, replica)
