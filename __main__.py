"""woocommerce-dr: read and validate the stack config once, check the regions, compose the
components, export what `drctl` and people need. Everything else lives in components/."""

import pulumi

from components import preflight
from components.config import load_stack_config
from components.database import DatabaseTier, DatabaseTierArgs, WebClients

config = load_stack_config()
preflight.check_regions(config)

# The database admits each region's web nodes, and the web nodes need the database's endpoints: the
# web nodes' addresses reach the database tier as deferred Outputs, resolved once the web tier exists.
web_addresses = {r.region: (pulumi.deferred_output(), pulumi.deferred_output()) for r in config.regions}
database = DatabaseTier("db", DatabaseTierArgs.from_config(config, web_clients={
    region: WebClients(public_ips=public, private_ips=private)
    for region, ((public, _), (private, _)) in web_addresses.items()
}))
# Until the web tier lands (issue 3) no web node exists, so none is admitted.
for (_, admit_public), (_, admit_private) in web_addresses.values():
    admit_public(pulumi.Output.from_input([]))
    admit_private(pulumi.Output.from_input([]))

pulumi.export("url", f"https://{config.domain}")
pulumi.export("regions", [r.region for r in config.regions])
pulumi.export("worstCaseDetectionSeconds", config.traffic.monitor.worst_case_detection_seconds)
pulumi.export("database", database.outputs())
