"""The database tier next to stand-in web nodes (plain Linodes with computed IPs), the way __main__
wires it to the web tier: the allow-lists and firewalls must carry the web nodes' computed
addresses, and each region's endpoint must reach the web side."""

import pulumi
import pulumi_linode as linode

from components.config import load_stack_config
from components.database import DatabaseTier, DatabaseTierArgs, WebClients
from components.heartbeat import heartbeat_writer_files

config = load_stack_config()
web = {
    r.region: [
        linode.Instance(f"web-{r.region}-{i}", region=r.region, type=r.instance_type, image=r.image, private_ip=True)
        for i in range(r.web_nodes)
    ]
    for r in config.regions
}
database = DatabaseTier("db", DatabaseTierArgs.from_config(config, web_clients={
    region: WebClients(
        public_ips=pulumi.Output.all(*[n.ipv4s for n in nodes]).apply(
            lambda sets: [ip for ips in sets for ip in ips if not ip.startswith("192.168.")]),
        private_ips=pulumi.Output.all(*[n.private_ip_address for n in nodes]),
    )
    for region, nodes in web.items()
}))
pulumi.export("endpoints", {
    region: {"role": e.role, "host": e.host, "port": e.port, "user": e.user, "password": e.password,
             "caCert": e.ca_cert_pem, "address": e.address}
    for region, e in database.endpoints().items()
})
pulumi.export("database", database.outputs())
if database.needs_web_heartbeat:
    pulumi.export("heartbeatFiles", heartbeat_writer_files(database.admin_endpoint(), database.heartbeat_endpoint(),
                                                           database.managed_setup_sql()))
