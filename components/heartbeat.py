"""The managed primary's setup and its replication heartbeat writer, to embed in ONE primary-region
web node.

Replicas measure lag as now() minus the time in `drctl.drctl_heartbeat`, which must be rewritten on
the primary every second. A self-managed primary does that with its own event scheduler, and its
own bootstrap creates the shop's schema and account. A managed database runs nothing of ours, so a
systemd oneshot on one web node of the primary region sets it up once with the admin account (the
shop's schema, the shop's own account, the heartbeat table: drctl.mysql.bootstrap's
`managed_primary_setup_sql`) and a timer writes the heartbeat with an account of its own, allowed that one
table. The admin's credentials stay in a root-only file there for the setup; PHP on that node, like
every web node, has only the shop account's. When
`database.needs_web_heartbeat` is true, __main__ passes

    build_web_tiers(..., heartbeat_writer=heartbeat_writer_files(
        database.admin_endpoint(), database.heartbeat_endpoint(), database.managed_setup_sql()))

and the web tier adds these files, HEARTBEAT_WRITER_PACKAGES and HEARTBEAT_WRITER_RUNCMD to the
primary region's first node only. The SQL is drctl's (`drctl.mysql`), so the writer, the replicas'
lag reader and /healthz agree on the table.
"""

from __future__ import annotations

import pulumi

from components.endpoints import DatabaseEndpoint
from components.mysql_cloud_init import render_template
from drctl.mysql import replication

HEARTBEAT_WRITER_PACKAGES = ("mysql-client",)
HEARTBEAT_WRITER_RUNCMD = (
    ["systemctl", "daemon-reload"],
    ["systemctl", "enable", "--now", "drctl-heartbeat-schema.service", "drctl-heartbeat.timer"],
)
_UNITS = ("drctl-heartbeat-schema.service", "drctl-heartbeat.service", "drctl-heartbeat.timer")


def heartbeat_units() -> dict[str, str]:
    """systemd unit name -> text. No secrets: credentials live in heartbeat.cnf."""
    values = {"schema_sql": "; ".join(replication.HEARTBEAT_DDL), "write_sql": replication.HEARTBEAT_WRITE}
    return {unit: render_template(unit, **values) for unit in _UNITS}


def heartbeat_client_config(host: str, port: int, user: str, password: str) -> str:
    escaped = password.replace("\\", "\\\\").replace('"', '\\"')
    return render_template("heartbeat.cnf", host=host, port=port, user=user, password=escaped)


SETUP_SQL = "/etc/woocommerce-dr/primary-setup.sql"
ADMIN_CNF = "/etc/woocommerce-dr/primary-admin.cnf"  # the setup's login: the managed admin
WRITER_CNF = "/etc/woocommerce-dr/heartbeat.cnf"  # the timer's login: the heartbeat's own account


def heartbeat_writer_files(admin: DatabaseEndpoint, writer: DatabaseEndpoint,
                           setup_sql: pulumi.Input[str]) -> pulumi.Output[list[dict]]:
    """cloud-init write_files entries for the setup (logging in as `admin`, the managed primary's
    admin) and the writer (as `writer`, the heartbeat's own account, which the setup creates); a
    secret Output (the client configs and the setup script hold passwords: all root's alone)."""

    def build(args: list) -> list[dict]:
        host, port, admin_user, admin_password, writer_user, writer_password, ca_pem, sql = args
        units = [
            {"path": f"/etc/systemd/system/{unit}", "content": text, "permissions": "0644"}
            for unit, text in heartbeat_units().items()
        ]
        return [
            {"path": ADMIN_CNF, "permissions": "0600",
             "content": heartbeat_client_config(host, int(port), admin_user, admin_password)},
            {"path": WRITER_CNF, "permissions": "0600",
             "content": heartbeat_client_config(host, int(port), writer_user, writer_password)},
            {"path": "/etc/woocommerce-dr/primary-ca.pem", "permissions": "0644", "content": ca_pem},
            {"path": SETUP_SQL, "permissions": "0600", "content": sql},
            *units,
        ]

    joined = pulumi.Output.all(admin.host, admin.port, admin.user, admin.password, writer.user, writer.password,
                               admin.ca_cert_pem, setup_sql)
    return pulumi.Output.secret(joined.apply(build))
