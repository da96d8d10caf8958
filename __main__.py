"""woocommerce-dr: read and validate the stack config once, check the regions, compose the
components, export what `drctl` and people need. Everything else lives in components/."""

import pulumi

from components import object_storage, preflight
from components.backups import BinlogArchive, check_archive_storage
from components.config import load_stack_config
from components.database import DatabaseTier, DatabaseTierArgs, WebClients
from components.drctl_output import drctl_document, drctl_output
from components.guard import GuardTier, GuardTierArgs
from components.guard_addresses import GuardAddresses
from components.heartbeat import heartbeat_writer_files
from components.media_storage import MediaStorage
from components.traffic import RegionOrigin, Traffic
from components.web_tier import build_web_tiers

config = load_stack_config()
preflight.check_regions(config)
storage_regions = object_storage.storage_regions(config)  # refuses before anything is created
check_archive_storage(config, storage_regions)
primary = config.primary.region

# Automatic promotion: the guards' reserved addresses first, so the database and the NodeBalancers
# can admit them before the guards (whose user data names those firewalls) exist.
guard_addresses = GuardAddresses("guard-ip", config.automation.guards) if config.automatic else None
guard_ips = guard_addresses.ipv4s if guard_addresses else []

# The database admits each region's web nodes, and the web nodes need the database's endpoints: the
# web nodes' addresses reach the database tier as deferred Outputs, resolved once the web tier exists.
web_addresses = {r.region: (pulumi.deferred_output(), pulumi.deferred_output()) for r in config.regions}
# Point-in-time recovery: the archive first, so the replica in its region boots running the archiver.
archive = BinlogArchive("binlogs", config, storage_regions) if config.backups.enabled else None
database = DatabaseTier("db", DatabaseTierArgs.from_config(config, web_clients={
    region: WebClients(public_ips=public, private_ips=private)
    for region, ((public, _), (private, _)) in web_addresses.items()
}, guard_ips=guard_ips, archiver=archive.deployment() if archive else None))
endpoints = database.endpoints()
media = MediaStorage("media", config, storage_regions)
web = build_web_tiers(config, endpoints, heartbeat_writer=(
    heartbeat_writer_files(database.admin_endpoint(), database.heartbeat_endpoint(), database.managed_setup_sql())
    if database.needs_web_heartbeat else None), guard_ips=guard_ips, media=media)
for region, ((_, admit_public), (_, admit_private)) in web_addresses.items():
    admit_public(pulumi.Output.all(*web.regions[region].public_ipv4s))
    admit_private(pulumi.Output.all(*web.regions[region].private_ips))

traffic = Traffic("traffic", config, origins=[
    RegionOrigin(region, tier.nodebalancer_ipv4, tier.nodebalancer_ipv6) for region, tier in web.regions.items()
])

document = drctl_document(config, web, database, traffic, media=media, archive=archive)
if guard_addresses:
    # The guards promote with the runbook's outputs; the archive's keys stay off their disks.
    guards = GuardTier("guard", GuardTierArgs.from_config(config), guard_addresses,
                       drctl_document(config, web, database, traffic, media=media))
    document = drctl_document(config, web, database, traffic, guards=guards.entries, media=media, archive=archive)
pulumi.export("drctl", drctl_output(document))
pulumi.export("url", f"https://{config.domain}")
pulumi.export("primaryNodeBalancerIp", web.regions[primary].nodebalancer_ipv4)
pulumi.export("nodeBalancerIps", {region: tier.nodebalancer_ipv4 for region, tier in web.regions.items()})
pulumi.export("wordpressAdminPassword", web.site.admin_password)
# Which Object Storage region keeps each region's uploads (itself, or the nearest that offers it).
pulumi.export("mediaBuckets", {region: {"bucket": b.resource.label, "storageRegion": b.storage_region}
                               for region, b in media.bucket_set.buckets.items()})
