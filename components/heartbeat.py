"""The managed primary's setup and its replication heartbeat writer, to embed in ONE primary-region
web node.

Replicas measure lag as now() minus the time in `drctl.drctl_heartbeat`, which must be rewritten on
the primary every second. A self-managed primary does that with its own event scheduler, and its
own bootstrap creates the shop's schema and account. A managed database runs nothing of ours, so a
systemd oneshot on one web node of the primary region sets it up once with the admin account (the
shop's schema, the shop's own account, the heartbeat table: drctl.mysql.bootstrap's
`managed_primary_setup_sql`) and a timer writes the heartbeat. The admin's credentials stay in a
root-only file there; PHP on that node, like every web node, has only the shop account's. When
`database.needs_web_heartbeat` is true, __main__ passes

    build_web_tiers(..., heartbeat_writer=heartbeat_writer_files(database.admin_endpoint(),
                                                                 database.managed_setup_sql()))

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


def heartbeat_writer_files(endpoint: DatabaseEndpoint, setup_sql: pulumi.Input[str]) -> pulumi.Output[list[dict]]:
    """cloud-init write_files entries for the setup and the writer, logging in as `endpoint` (the
    managed primary's admin); a secret Output (the client config and the setup script hold
    passwords: both root's alone)."""

    def build(args: list) -> list[dict]:
        host, port, user, password, ca_pem, sql = args
        units = [
            {"path": f"/etc/systemd/system/{unit}", "content": text, "permissions": "0644"}
            for unit, text in heartbeat_units().items()
        ]
        return [
            {"path": "/etc/woocommerce-dr/heartbeat.cnf", "permissions": "0600",
             "content": heartbeat_client_config(host, int(port), user, password)},
            {"path": "/etc/woocommerce-dr/primary-ca.pem", "permissions": "0644", "content": ca_pem},
            {"path": SETUP_SQL, "permissions": "0600", "content": sql},
            *units,
        ]

    joined = pulumi.Output.all(endpoint.host, endpoint.port, endpoint.user, endpoint.password, endpoint.ca_cert_pem,
                               setup_sql)
    return pulumi.Output.secret(joined.apply(build))
