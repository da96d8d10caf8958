"""The replication heartbeat writer for managed mode, to embed in ONE primary-region web node.

Replicas measure lag as now() minus the time in `drctl.drctl_heartbeat`, which must be rewritten on
the primary every second. A self-managed primary does that with its own event scheduler. A managed
database runs no event of ours, so a systemd timer on one web node of the primary region writes it
instead. When `database.needs_web_heartbeat` is true, __main__ passes

    build_web_tiers(..., heartbeat_writer=heartbeat_writer_files(endpoints[primary_region]))

and the web tier adds these files, HEARTBEAT_WRITER_PACKAGES and HEARTBEAT_WRITER_RUNCMD to the
primary region's first node only. The SQL is drctl's (`drctl.mysql.replication`), so the writer, the
replicas' lag reader and /healthz agree on the table.
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


def heartbeat_writer_files(endpoint: DatabaseEndpoint) -> pulumi.Output[list[dict]]:
    """cloud-init write_files entries for the writer; a secret Output (the client config holds the
    database password)."""

    def build(args: list) -> list[dict]:
        host, port, user, password, ca_pem = args
        units = [
            {"path": f"/etc/systemd/system/{unit}", "content": text, "permissions": "0644"}
            for unit, text in heartbeat_units().items()
        ]
        return [
            {"path": "/etc/woocommerce-dr/heartbeat.cnf", "permissions": "0600",
             "content": heartbeat_client_config(host, int(port), user, password)},
            {"path": "/etc/woocommerce-dr/primary-ca.pem", "permissions": "0644", "content": ca_pem},
            *units,
        ]

    joined = pulumi.Output.all(endpoint.host, endpoint.port, endpoint.user, endpoint.password, endpoint.ca_cert_pem)
    return pulumi.Output.secret(joined.apply(build))
