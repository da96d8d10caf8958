"""The database tier: a MySQL primary in the primary region and a live replica in every other.

- managed mode: the primary is a Linode Managed Database (`linode.DatabaseMysqlV2`, in-region HA
  with `clusterSize` nodes); its allow-list lives in `linode.DatabaseAccessControls`.
- self-managed mode: the primary is a MySQL 8 Linode too, set up by the same bootstrap code.

Managed databases have no cross-region replicas (DESIGN §2), so each replica is a MySQL 8 Linode
that replicates from the primary with GTID auto-positioning over verified TLS, set up on first boot
by `drctl.mysql.bootstrap` (shipped in its user data, see mysql_cloud_init.py).

TLS: our Linodes' server certificates come from a CA made here (`pulumi_tls`) and name the server as
`mysql-<region>.db.<domain>` (components/server_names.py), not its IP, because the IP exists only
after the certificate is in the user data. Each name is published as a DNS-only A record in the
shop's Cloudflare zone, pointing at the server's public IPv4, so every server resolves every peer
whatever the topology after `drctl promote` or `failback`. The web nodes map their database's name
to its private IP instead (`DatabaseEndpoint.address`): they must come in over the private network.
Publishing the names reveals the servers' addresses, not access: the firewalls still admit MySQL
from the web nodes and the other database servers only.

Accounts: the managed admin (`akmadmin`) in managed mode, or `drctl` (all privileges) on our own
servers; `replicator` (REPLICATION SLAVE only, self-managed primary); `woocommerce` (the shop's own
schema, plus reading what /healthz needs) for the web nodes in both modes — created on each replica
locally, outside its binary log, by a self-managed primary's bootstrap, and on a managed primary by
the admin account from one primary-region web node (`managed_setup_sql`, components/heartbeat.py),
which also creates `drctl_heartbeat` for that node's heartbeat timer (the heartbeat table only).

With backups on, the replica in `backups.region` also runs the binlog archiver (`drctl archive`,
components/archive_host.py), installed with the rest of its first boot.

The web tier and this tier need each other's computed values (web nodes need the database host,
the allow-list needs the web nodes' IPs), so the web nodes' addresses come in as Inputs
(`WebClients`), which __main__ can fill from the web tier after building both.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_cloudflare as cloudflare
import pulumi_linode as linode
import pulumi_random as random
import pulumi_tls as tls

from components import archive_host, drctl_install, firewall_rules
from components import mysql_cloud_init as ci
from components.config import DatabaseSpec, StackConfig
from components.endpoints import DatabaseEndpoint
from components.server_names import common_name, server_name
from components.tags import label, tags
from drctl.mysql import bootstrap, replication

MYSQL_PORT = 3306
APP_USER, APP_DATABASE = "woocommerce", "woocommerce"
ADMIN_USER = "drctl"
REPLICATION_USER = "replicator"
HEARTBEAT_USER = "drctl_heartbeat"  # managed mode: the web-node timer that writes the heartbeat
# Web nodes reach the database over the region's private network (Linode private IPv4 range).
PRIVATE_NETWORK_ACCOUNT_HOST = "192.168.%"
SELF_MANAGED_BINLOG_SECONDS = 7 * 86400
CERT_HOURS = 10 * 365 * 24  # replacing a database server's certificate means rebuilding it
# Short, so a server replaced with a new IP is found again within a minute.
NAME_TTL_SECONDS = 60
CLOUDFLARE_COMMENT_LIMIT = 100  # characters, on every plan
# How a client on the server itself logs in: MySQL's root through the socket, authenticated by the
# peer's user id (Ubuntu's auth_socket), so no password exists to leak.
LOCAL_ROOT_CLIENT = (f"--socket={ci.SOCKET}", "--user=root")


@dataclass(frozen=True)
class WebClients:
    """One region's web nodes as the database must admit them: public IPs reach a managed database,
    private IPs reach our MySQL Linodes in the same region."""

    public_ips: pulumi.Input[Sequence[str]]
    private_ips: pulumi.Input[Sequence[str]]


@dataclass(frozen=True)
class DatabaseTierArgs:
    spec: DatabaseSpec
    regions: tuple[str, ...]  # failover order: the first is the primary's region
    admin_cidrs: tuple[str, ...]
    ssh_keys: tuple[str, ...]
    web_clients: Mapping[str, WebClients]  # region -> its web nodes; every configured region
    domain: str  # the servers' names live under it (components/server_names.py)
    zone_id: str  # the Cloudflare zone the domain is in, where the names are published
    # Where drctl runs: operators' networks (access.operatorCidrs) and the guard Linodes' IPv4
    # addresses (components/guard.py; empty with manual promotion), admitted to MySQL everywhere.
    operator_cidrs: tuple[str, ...] = ()
    guard_ips: pulumi.Input[Sequence[str]] = ()
    # backups.enabled: the replica in its region runs the binlog archiver (components/archive_host.py).
    archiver: archive_host.ArchiverDeployment | None = None

    @classmethod
    def from_config(cls, config: StackConfig, web_clients: Mapping[str, WebClients],
                    guard_ips: pulumi.Input[Sequence[str]] = (),
                    archiver: archive_host.ArchiverDeployment | None = None) -> DatabaseTierArgs:
        return cls(
            operator_cidrs=config.access.operator_cidrs,
            guard_ips=guard_ips,
            archiver=archiver,
            spec=config.database,
            regions=tuple(r.region for r in config.regions),
            admin_cidrs=config.access.admin_cidrs,
            ssh_keys=config.access.ssh_keys,
            web_clients=web_clients,
            domain=config.domain,
            zone_id=config.traffic.zone_id,
        )

    @property
    def primary_region(self) -> str:
        return self.regions[0]

    @property
    def replica_regions(self) -> tuple[str, ...]:
        return self.regions[1:]


@dataclass(frozen=True)
class ReplicaServer:
    region: str
    server_id: int
    host: str  # the name its certificate carries, published in DNS
    instance_id: pulumi.Output[str]
    public_ip: pulumi.Output[str]
    private_ip: pulumi.Output[str]


class DatabaseTier(pulumi.ComponentResource):
    mode: str
    host: pulumi.Output[str]
    port: pulumi.Output[int]
    ca_cert_pem: pulumi.Output[str]  # secret; the primary's CA
    admin_user: pulumi.Output[str]
    admin_password: pulumi.Output[str]  # secret
    address: pulumi.Output[str] | None  # self-managed: the primary's public IP, where drctl connects
    server_ca_cert_pem: pulumi.Output[str]  # CA of our MySQL Linodes (replicas, self-managed primary)
    replicas: dict[str, ReplicaServer]
    name_records: dict[str, cloudflare.DnsRecord]  # region -> the A record of its MySQL Linode

    def __init__(self, name: str, args: DatabaseTierArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("woocommerce-dr:index:DatabaseTier", name, None, opts)
        unknown = sorted(set(args.web_clients) - set(args.regions))
        missing = sorted(set(args.regions) - set(args.web_clients))
        if unknown or missing:
            raise ValueError(f"web_clients must name every configured region (missing {missing}, unknown {unknown})")
        if args.archiver and args.archiver.region not in args.replica_regions:
            raise ValueError(f"the archiver runs on a replica: {args.archiver.region} has none (components/config.py)")
        self._name, self._args = name, args
        self.mode = args.spec.mode
        self.name_records = {}
        child = pulumi.ResourceOptions(parent=self)

        self._app_password = _password(f"{name}-app-password", child)
        self._admin_password = _password(f"{name}-admin-password", child)
        ca_key = tls.PrivateKey(f"{name}-ca-key", algorithm="ECDSA", ecdsa_curve="P256", opts=child)
        ca = tls.SelfSignedCert(
            f"{name}-ca", private_key_pem=ca_key.private_key_pem, is_ca_certificate=True,
            validity_period_hours=CERT_HOURS, allowed_uses=["cert_signing", "crl_signing"],
            subject={"common_name": f"{pulumi.get_project()} {pulumi.get_stack()} MySQL CA"}, opts=child,
        )
        self._ca_key, self._ca = ca_key, ca
        self.server_ca_cert_pem = ca.cert_pem

        if self.mode == "managed":
            self._heartbeat_password = _password(f"{name}-heartbeat-password", child)
            self._managed_primary(args.spec)
        else:
            self._self_managed_primary(args)

        self.replicas = {
            region: self._replica(region, args.regions.index(region) + 1) for region in args.replica_regions
        }
        self._firewalls: dict[str, linode.Firewall] = {}
        self._admit_clients()

        self.register_outputs({
            "mode": self.mode,
            "host": self.host,
            "port": self.port,
            "caCert": self.ca_cert_pem,
            "adminUser": self.admin_user,
            "adminPassword": self.admin_password,
            "serverCaCert": self.server_ca_cert_pem,
            "replicas": self._replica_outputs(),
            "nameRecordIds": {region: record.id for region, record in self.name_records.items()},
        })

    # --- the primary ---------------------------------------------------------------------------
    def _managed_primary(self, spec: DatabaseSpec) -> None:
        db = linode.DatabaseMysqlV2(
            f"{self._name}-primary",
            label=label("database", pulumi.get_project(), pulumi.get_stack(), "mysql"),
            engine_id="mysql/8",
            region=self._args.primary_region,
            type=spec.type,
            cluster_size=spec.cluster_size,
            updates={
                "day_of_week": spec.maintenance_day_number,
                "hour_of_day": spec.maintenance_hour,
                "duration": 4,
                "frequency": "weekly",
            },
            engine_config_binlog_retention_period=spec.binlog_retention_seconds,
            engine_config_mysql_sql_require_primary_key=False,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self._database = db
        self.host = db.host_primary
        self.port = db.port
        self.address = None
        # The API hands the CA over base64-encoded; clients want PEM.
        self.ca_cert_pem = pulumi.Output.secret(db.ca_cert.apply(lambda b64: base64.b64decode(b64).decode()))
        self.admin_user = db.root_username
        self.admin_password = pulumi.Output.secret(db.root_password)
        self._replication = _SourceAccess(
            host=db.host_primary, port=db.port, ca_pem=self.ca_cert_pem,
            admin_user=db.root_username, admin_password=self.admin_password,
            replication_user=db.root_username, replication_password=self.admin_password,
            # The managed admin is the only account there: it must both replicate and read status.
            required_privileges=replication.REPLICATION_PRIVILEGES,
        )
        # The web nodes log in as the shop's own account, which the setup on one primary-region web
        # node creates with the admin account (`managed_setup_sql`), never as the admin.
        self._primary_endpoint = DatabaseEndpoint(
            region=self._args.primary_region, role="primary", host=db.host_primary, port=db.port,
            ca_cert_pem=self.ca_cert_pem, user=APP_USER, password=pulumi.Output.secret(self._app_password.result),
        )

    def _self_managed_primary(self, args: DatabaseTierArgs) -> None:
        region = args.primary_region
        replication_password = _password(f"{self._name}-replication-password", pulumi.ResourceOptions(parent=self))
        host = server_name(self._args.domain, region)
        server_tls = self._server_tls(region, host)
        settings = ci.mysql_settings(
            "primary", region=region, server_id=1,
            binlog_expire_seconds=max(SELF_MANAGED_BINLOG_SECONDS, args.spec.binlog_retention_seconds),
        )
        bootstrap = pulumi.Output.all(self._admin_password.result, self._app_password.result,
                                      replication_password.result).apply(
            lambda pw: {
                "role": "primary", "region": region, "serverId": 1, "statusFile": ci.STATUS_FILES["primary"],
                "socket": ci.SOCKET,
                "admin": {"name": ADMIN_USER, "password": pw[0], "host": "%"},
                "app": {"name": APP_USER, "password": pw[1], "host": PRIVATE_NETWORK_ACCOUNT_HOST},
                "appDatabase": APP_DATABASE,
                "replication": {"name": REPLICATION_USER, "password": pw[2], "host": "%"},
                "heartbeatEvent": True,
            })
        text = pulumi.Output.all(server_tls, bootstrap).apply(
            lambda v: ci.cloud_config(settings=settings, tls=v[0], bootstrap=v[1]))
        instance = self._instance(region, "primary", text)
        self._primary_instance = instance
        self._publish(region, "primary", host, instance)
        self.host = pulumi.Output.from_input(host)
        self.port = pulumi.Output.from_input(MYSQL_PORT)
        self.address = _public_ipv4(instance)
        self.ca_cert_pem = pulumi.Output.secret(self._ca.cert_pem)
        self.admin_user = pulumi.Output.from_input(ADMIN_USER)
        self.admin_password = pulumi.Output.secret(self._admin_password.result)
        self._replication = _SourceAccess(
            host=self.host, port=self.port, ca_pem=self.ca_cert_pem,
            admin_user=self.admin_user, admin_password=self.admin_password,
            replication_user=pulumi.Output.from_input(REPLICATION_USER),
            replication_password=pulumi.Output.secret(replication_password.result),
            required_privileges=("REPLICATION SLAVE",),
        )
        self._primary_endpoint = DatabaseEndpoint(
            region=region, role="primary", host=host, port=MYSQL_PORT, ca_cert_pem=self.ca_cert_pem,
            user=APP_USER, password=pulumi.Output.secret(self._app_password.result),
            address=instance.private_ip_address,
        )

    # --- replicas ------------------------------------------------------------------------------
    def _replica(self, region: str, server_id: int) -> ReplicaServer:
        host = server_name(self._args.domain, region)
        src = self._replication
        settings = ci.mysql_settings(
            "replica", region=region, primary_region=self._args.primary_region, server_id=server_id,
            binlog_expire_seconds=max(SELF_MANAGED_BINLOG_SECONDS, self._args.spec.binlog_retention_seconds),
        )
        bootstrap = pulumi.Output.all(
            self._admin_password.result, self._app_password.result, src.host, src.port, src.admin_user,
            src.admin_password, src.replication_user, src.replication_password,
        ).apply(lambda v: {
            "role": "replica", "region": region, "serverId": server_id, "statusFile": ci.STATUS_FILES["replica"],
            "socket": ci.SOCKET,
            "admin": {"name": ADMIN_USER, "password": v[0], "host": "%"},
            "app": {"name": APP_USER, "password": v[1], "host": PRIVATE_NETWORK_ACCOUNT_HOST},
            "appDatabase": APP_DATABASE,
            "source": {
                "host": v[2], "port": int(v[3]), "caFile": ci.SOURCE_CA,
                "admin": {"name": v[4], "password": v[5]},
                "replication": {"name": v[6], "password": v[7]},
                "requiredPrivileges": list(src.required_privileges),
            },
        })
        archiver = self._args.archiver
        service = self._archiver_service(archiver) if archiver and archiver.region == region else None
        text = pulumi.Output.all(self._server_tls(region, host), bootstrap, src.ca_pem, service).apply(
            lambda v: ci.cloud_config(settings=settings, tls=v[0], bootstrap=v[1], source_ca_pem=v[2], service=v[3]))
        # The replica looks its source up by name as soon as it boots: a self-managed primary's
        # record must exist by then, or the resolver would cache the name as missing.
        source_record = self.name_records.get(self._args.primary_region)
        instance = self._instance(region, "replica", text, depends_on=[source_record] if source_record else [])
        self._publish(region, "replica", host, instance)
        return ReplicaServer(region=region, server_id=server_id, host=host, instance_id=instance.id,
                             public_ip=_public_ipv4(instance), private_ip=instance.private_ip_address)

    def _archiver_service(self, deployment: archive_host.ArchiverDeployment) -> pulumi.Output[ci.DrctlService]:
        """drctl archive on this replica (components/archive_host.py). Its sources are every server
        that may become primary, in failover order: the primary with the account replicas use
        (managed: the admin; self-managed: `replicator`, REPLICATION SLAVE only) and every replica
        with its admin account, the one account each of our Linodes has (the replicas are seeded
        without the primary's accounts; drctl promote repoints peers with it too)."""
        src = self._replication
        primary = pulumi.Output.all(src.host, src.port, src.replication_user, src.replication_password).apply(
            lambda v: archive_host.ArchiveSource(v[0], int(v[1]), v[2], v[3], ci.SOURCE_CA))
        replica_hosts = [server_name(self._args.domain, region) for region in self._args.replica_regions]
        replicas = self._admin_password.result.apply(lambda pw: [
            archive_host.ArchiveSource(host, MYSQL_PORT, ADMIN_USER, pw, ci.SERVER_CA) for host in replica_hosts])

        def service(v: list) -> ci.DrctlService:
            settings = archive_host.settings_document(deployment, v[2], v[3], [v[0], *v[1]], LOCAL_ROOT_CLIENT)
            return ci.DrctlService(files=tuple(archive_host.host_files(deployment, settings)),
                                   packages=drctl_install.PACKAGES, command=drctl_install.INSTALL)
        return pulumi.Output.all(primary, replicas, deployment.bucket, deployment.archive_key).apply(service)

    # --- shared pieces -------------------------------------------------------------------------
    def _server_tls(self, region: str, host: str) -> pulumi.Output[ci.ServerTls]:
        child = pulumi.ResourceOptions(parent=self)
        key = tls.PrivateKey(f"{self._name}-{region}-key", algorithm="ECDSA", ecdsa_curve="P256", opts=child)
        csr = tls.CertRequest(f"{self._name}-{region}-csr", private_key_pem=key.private_key_pem,
                              subject={"common_name": common_name(host)}, dns_names=[host], opts=child)
        cert = tls.LocallySignedCert(
            f"{self._name}-{region}-cert", cert_request_pem=csr.cert_request_pem,
            ca_private_key_pem=self._ca_key.private_key_pem, ca_cert_pem=self._ca.cert_pem,
            validity_period_hours=CERT_HOURS, allowed_uses=["digital_signature", "key_encipherment", "server_auth"],
            opts=child,
        )
        return pulumi.Output.all(self._ca.cert_pem, cert.cert_pem, key.private_key_pem).apply(
            lambda v: ci.ServerTls(ca_cert_pem=v[0], cert_pem=v[1], key_pem=v[2]))

    def _instance(self, region: str, role: str, cloud_config: pulumi.Output[str],
                  depends_on: Sequence[pulumi.Resource] = ()) -> linode.Instance:
        child = pulumi.ResourceOptions(parent=self)
        root = _password(f"{self._name}-{role}-{region}-root", child)
        user_data = pulumi.Output.secret(cloud_config.apply(ci.user_data))
        return linode.Instance(
            f"{self._name}-{role}-{region}",
            label=label("instance", pulumi.get_project(), pulumi.get_stack(), "mysql", region),
            region=region,
            type=self._args.spec.type if role == "primary" else self._args.spec.replica_type,
            image=self._args.spec.replica_image,
            private_ip=True,
            root_pass=root.result,
            authorized_keys=list(self._args.ssh_keys) or None,
            tags=tags(region, f"database-{role}"),
            metadatas=[linode.InstanceMetadataArgs(user_data=user_data)],
            # User data runs on first boot only, and the provider rebuilds an instance whose user
            # data changed: a template edit must never wipe a database server.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["metadatas"], depends_on=list(depends_on)),
        )

    def _publish(self, region: str, role: str, host: str, instance: linode.Instance) -> None:
        """The server's name as an A record at its public IPv4. DNS only: Cloudflare proxies HTTP,
        not MySQL, and a proxied name would resolve to Cloudflare. No AAAA: peers are admitted by
        IPv4 (`_admit_clients`), and a client trying IPv6 first would wait out a dropped connection."""
        comment = (f"{pulumi.get_project()} {pulumi.get_stack()}: MySQL {role} in {region}; "
                   "peers verify its certificate by this name")
        self.name_records[region] = cloudflare.DnsRecord(
            f"{self._name}-{region}-dns", zone_id=self._args.zone_id, name=host, type="A",
            content=_public_ipv4(instance), proxied=False, ttl=NAME_TTL_SECONDS,
            comment=comment[:CLOUDFLARE_COMMENT_LIMIT], opts=pulumi.ResourceOptions(parent=self),
        )

    def _admit_clients(self) -> None:
        """Who may reach MySQL: the primary region's web nodes and every replica; each replica
        also admits its own region's web nodes and the other database servers (failback,
        repointing after a promotion). SSH only from access.adminCidrs. Never the whole internet:
        the servers' names are in public DNS, so anyone may learn their IPs, not reach them."""
        args = self._args
        # region -> public IP of the MySQL Linode there
        servers = {region: r.public_ip for region, r in self.replicas.items()}
        primary_web = args.web_clients[args.primary_region]
        if self.mode == "managed":
            linode.DatabaseAccessControls(
                f"{self._name}-allow-list", database_id=self._database.id.apply(int), database_type="mysql",
                allow_lists=pulumi.Output.all(_cidrs(primary_web.public_ips, list(servers.values())),
                                              _guard_cidrs(args.guard_ips)).apply(
                    lambda v: [*v[0], *args.operator_cidrs, *v[1]]),
                opts=pulumi.ResourceOptions(parent=self),
            )
        else:
            self._firewall(args.primary_region, self._primary_instance.id,
                           _cidrs(primary_web.private_ips, list(servers.values())))
            servers[args.primary_region] = _public_ipv4(self._primary_instance)
        for region, replica in self.replicas.items():
            peers = [ip for other, ip in servers.items() if other != region]
            self._firewall(region, replica.instance_id, _cidrs(args.web_clients[region].private_ips, peers))

    def _firewall(self, region: str, instance_id: pulumi.Output[str],
                  mysql_sources: pulumi.Output[list[str]]) -> linode.Firewall:
        admin, operators = self._args.admin_cidrs, self._args.operator_cidrs
        inbounds = pulumi.Output.all(mysql_sources, _guard_cidrs(self._args.guard_ips)).apply(
            lambda v: firewall_rules.database_inbound(v[0], admin, operators, v[1]))
        firewall = linode.Firewall(
            f"{self._name}-{region}-firewall",
            label=label("firewall", pulumi.get_stack(), "mysql", region),
            inbound_policy="DROP",
            outbound_policy="ACCEPT",
            inbounds=inbounds,
            linodes=[instance_id.apply(int)],
            tags=tags(region, "database-firewall"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self._firewalls[region] = firewall
        return firewall

    def _replica_outputs(self) -> list[dict]:
        return [
            {"region": region, "instanceId": r.instance_id.apply(int), "publicIp": r.public_ip,
             "privateIp": r.private_ip, "serverId": r.server_id, "port": MYSQL_PORT, "host": r.host,
             "firewallId": self._firewalls[region].id.apply(int)}
            for region, r in self.replicas.items()
        ]

    # --- for the web tier ----------------------------------------------------------------------
    @property
    def needs_web_heartbeat(self) -> bool:
        """True when a primary-region web node must run the heartbeat writer (components/heartbeat.py):
        a managed database runs no event scheduler of ours."""
        return self.mode == "managed"

    def admin_endpoint(self) -> DatabaseEndpoint:
        """The primary as its admin account reaches it (managed mode: `akmadmin`): for the managed
        primary's setup and heartbeat writer (components/heartbeat.py), never for WordPress."""
        primary = self._primary_endpoint
        return DatabaseEndpoint(region=primary.region, role="primary", host=primary.host, port=primary.port,
                                ca_cert_pem=primary.ca_cert_pem, user=self.admin_user, password=self.admin_password,
                                address=primary.address)

    def heartbeat_endpoint(self) -> DatabaseEndpoint:
        """The managed primary as the heartbeat writer's own account reaches it (managed mode only)."""
        primary = self._primary_endpoint
        return DatabaseEndpoint(region=primary.region, role="primary", host=primary.host, port=primary.port,
                                ca_cert_pem=primary.ca_cert_pem, user=HEARTBEAT_USER,
                                password=pulumi.Output.secret(self._heartbeat_password.result))

    def managed_setup_sql(self) -> pulumi.Output[str]:
        """The script a managed primary's admin runs once (`drctl.mysql.bootstrap.managed_primary_setup_sql`):
        the shop's schema and account and the heartbeat writer's account, admitted from anywhere the
        allow-list admits (the web nodes' public IPs), and the heartbeat table. A secret: it holds
        both accounts' passwords."""
        return pulumi.Output.secret(pulumi.Output.all(self._app_password.result, self._heartbeat_password.result).apply(
            lambda pw: bootstrap.managed_primary_setup_sql(
                bootstrap.Account(APP_USER, pw[0], "%"), APP_DATABASE, bootstrap.Account(HEARTBEAT_USER, pw[1], "%"))))

    def endpoints(self) -> dict[str, DatabaseEndpoint]:
        """Region -> where its web nodes connect: the primary in the primary region, the local
        replica (read-only until promoted) elsewhere."""
        found = {self._args.primary_region: self._primary_endpoint}
        app_password = pulumi.Output.secret(self._app_password.result)
        for region, replica in self.replicas.items():
            found[region] = DatabaseEndpoint(
                region=region, role="replica", host=replica.host, port=MYSQL_PORT,
                ca_cert_pem=self.server_ca_cert_pem, user=APP_USER, password=app_password,
                address=replica.private_ip,
            )
        return found

    def outputs(self) -> dict:
        """This tier's part of the drctl stack-outputs contract (`drctl.stack.outputs.DatabaseOut`,
        camelCase): where the primary and every replica are, how to log in, and what fences them."""
        managed = self.mode == "managed"
        primary_region = self._args.primary_region
        return {
            "mode": self.mode,
            "primary": {
                "region": primary_region, "host": self.host, "address": self.address,
                "port": self.port, "caCert": self.ca_cert_pem, "adminUser": self.admin_user,
                "adminPassword": self.admin_password,
                # What drctl fences a lost primary with: the managed database's allow-list, or the
                # self-managed Linode's Cloud Firewall.
                "managedDatabaseId": self._database.id.apply(int) if managed else None,
                "instanceId": None if managed else self._primary_instance.id.apply(int),
                "firewallId": None if managed else self._firewalls[primary_region].id.apply(int),
            },
            "replicas": self._replica_outputs(),
            "serverCaCert": pulumi.Output.secret(self.server_ca_cert_pem),
            "replicaAdminUser": ADMIN_USER,
            "replicaAdminPassword": pulumi.Output.secret(self._admin_password.result),
            "heartbeat": "web-node timer" if self.needs_web_heartbeat else "event scheduler",
        }


@dataclass(frozen=True)
class _SourceAccess:
    """How a replica reaches and logs in to the primary."""

    host: pulumi.Input[str]
    port: pulumi.Input[int]
    ca_pem: pulumi.Input[str]
    admin_user: pulumi.Input[str]
    admin_password: pulumi.Input[str]
    replication_user: pulumi.Input[str]
    replication_password: pulumi.Input[str]
    required_privileges: tuple[str, ...]


def host_cidrs(ips: Sequence[str]) -> list[str]:
    """Single hosts as /32 (/128) networks, sorted and unique. Anything that is not one address is
    refused, so an allow-list can never widen to a network, let alone 0.0.0.0/0."""
    cidrs = set()
    for ip in ips:
        address = ipaddress.ip_address(str(ip).strip())  # raises on a network or garbage
        cidrs.add(f"{address}/{address.max_prefixlen}")
    return sorted(cidrs, key=lambda c: (ipaddress.ip_network(c).version, ipaddress.ip_network(c)))


def _public_ipv4(instance: linode.Instance) -> pulumi.Output[str]:
    """The instance's public IPv4 (`ipv4s` holds the private one too; `ip_address` is deprecated)."""
    return instance.ipv4s.apply(lambda ips: next(ip for ip in ips if not ipaddress.ip_address(ip).is_private))


def _cidrs(web_ips: pulumi.Input[Sequence[str]], server_ips: Sequence[pulumi.Input[str]]) -> pulumi.Output[list[str]]:
    return pulumi.Output.all(web_ips, *server_ips).apply(lambda v: host_cidrs([*v[0], *v[1:]]))


def _guard_cidrs(guard_ips: pulumi.Input[Sequence[str]]) -> pulumi.Output[list[str]]:
    return pulumi.Output.from_input(guard_ips).apply(lambda ips: host_cidrs(list(ips or ())))


def _password(name: str, opts: pulumi.ResourceOptions) -> random.RandomPassword:
    # Letters and digits only: the passwords land in my.cnf-style files, JSON and PHP config.
    return random.RandomPassword(name, length=40, special=False, opts=opts)
