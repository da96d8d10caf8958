"""The stack-outputs contract: everything drctl needs to know about a deployed stack.

The Pulumi program builds this model and exports it as the single output `drctl`; drctl reads it
back from `pulumi stack output --json --show-secrets` or from a file (`--outputs FILE`, for tests
and air-gapped runs). No Pulumi import here: drctl must work on a machine that only has the JSON.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_serializer
from pydantic.alias_generators import to_camel


class OutputsError(Exception):
    """The stack outputs cannot be read or do not match the contract; the message is for users."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True)

    @field_serializer("*", mode="wrap", when_used="json")
    def _reveal(self, value: Any, handler, info) -> Any:
        # Exported to Pulumi with secrets revealed (the whole output is a Pulumi secret);
        # anywhere else a SecretStr dumps as '**********'.
        if isinstance(value, SecretStr):
            return value.get_secret_value() if (info.context or {}).get("reveal_secrets") else str(value)
        return handler(value)


class NodeBalancerOut(_Model):
    id: int
    ipv4: str
    ipv6: str | None = None
    hostname: str


class WebInstanceOut(_Model):
    id: int
    label: str
    private_ip: str


class RegionOut(_Model):
    region: str
    role: Literal["primary", "dr"]  # as deployed; after a promotion drctl finds the live roles
    node_balancer: NodeBalancerOut
    web_instances: tuple[WebInstanceOut, ...]
    web_firewall_id: int
    node_balancer_firewall_id: int
    pool_id: str | None = None  # load-balancer mode


class ProbeCounts:
    """Fall and rise of a Cloudflare monitor, for the stack's config model and the outputs alike:
    Cloudflare treats consecutiveDown/Up 0 as 1 (one failed or good probe changes the state)."""

    consecutive_down: int
    consecutive_up: int

    @property
    def fall(self) -> int:
        """Failed probes in a row before an origin is down."""
        return max(1, self.consecutive_down)

    @property
    def rise(self) -> int:
        """Good probes in a row before an origin is up again."""
        return max(1, self.consecutive_up)


def fast_confirm_detection_seconds(interval: int, fall: int, fast_interval: int, timeout: int) -> int:
    """Worst case for `drctl watch` and `drctl guard` to call a region down, with fast confirm (HAProxy's
    `fastinter`): the last good probe lands just before the failure, the next one fails a whole
    `interval` later, then the remaining `fall - 1` probes follow every `fast_interval`, the last
    waiting out its `timeout`. Cloudflare's own monitor has no fast interval: its worst case is
    `MonitorSpec.worst_case_detection_seconds` (interval x fall + timeout x (retries + 1))."""
    return interval + (max(1, fall) - 1) * fast_interval + timeout


def guard_cycle_slack_seconds(fast_interval: int) -> int:
    """What `drctl guard` adds to detection in the objectives check: it only notices a change at its
    next cycle, every `fast_interval` while it waits on the other signals, once when Cloudflare's
    pool health (or the last vote) turns and once when the confirm time runs out."""
    return 2 * fast_interval


# What the objectives check allows `drctl guard`'s unplanned promote, from the decision to a writable
# primary in the surviving region with traffic on it. Fencing (one Linode API call) and promotion take
# seconds (the local rehearsal measures 1.3 s end to end); what can take long is the relay-log
# catch-up, which promote bounds with --apply-timeout (60 s) before it gives up and waits for a
# person; the rest covers the Linode and Cloudflare API round trips (fence, traffic, journal) under a
# degraded control plane. A bound, not a measurement: bench/ reports the measured phases beside it.
PROMOTION_BUDGET_SECONDS = 90


class MonitorOut(ProbeCounts, _Model):
    interval: int
    timeout: int
    retries: int
    consecutive_down: int
    consecutive_up: int
    expected_codes: str


class CloudflareOut(_Model):
    account_id: str
    zone_id: str
    monitor_id: str | None = None
    load_balancer_id: str | None = None
    dns_record_ids: tuple[str, ...] = ()  # dns-failover mode: the A (and AAAA) records


class FallbackPageOut(_Model):
    """The maintenance page's Worker (components/fallback_page.py): it answers a 503 from Cloudflare's
    edge when no region can, and steps aside by itself."""

    script_name: str
    route_pattern: str


# Where the database Linodes keep the CA certificates they verify a source with (cloud-init writes
# them: components/mysql_cloud_init.py). CHANGE REPLICATION SOURCE names a file on the replica, so
# repointing a server at a new primary needs these paths, not only the certificates.
SERVER_CA_PATH = "/etc/mysql/woocommerce-dr/ca.pem"
PRIMARY_CA_PATH = "/etc/mysql/woocommerce-dr/source-ca.pem"


class PrimaryDatabaseOut(_Model):
    region: str
    host: str
    port: int
    ca_cert: SecretStr
    admin_user: str
    admin_password: SecretStr
    instance_id: int | None = None  # self-managed mode: the primary's Linode
    firewall_id: int | None = None  # self-managed mode: fenced by blackholing this firewall
    managed_database_id: int | None = None  # managed mode: fenced by emptying its allow list
    # Self-managed mode: `host` is the name the server's certificate carries (mysql-<region>.db.<domain>,
    # in DNS for its peers); drctl connects to this public IP and verifies the certificate against `host`.
    address: str | None = None
    ca_path: str = PRIMARY_CA_PATH  # where the replicas keep `ca_cert`


class ReplicaOut(_Model):
    region: str
    instance_id: int
    public_ip: str
    private_ip: str
    server_id: int
    port: int = 3306
    firewall_id: int | None = None
    # The name the replica's certificate carries (mysql-<region>.db.<domain>), published in DNS:
    # its peers replicate from it by this name; drctl connects to `public_ip` and verifies against
    # this name and `DatabaseOut.server_ca_cert`.
    host: str | None = None


class DatabaseOut(_Model):
    mode: Literal["managed", "self-managed"]
    primary: PrimaryDatabaseOut
    replicas: tuple[ReplicaOut, ...]
    # Our MySQL Linodes (every replica, and the primary in self-managed mode) share one CA and one
    # administrator account (`drctl`, all privileges), which promote and failback log in with.
    server_ca_cert: SecretStr | None = None
    replica_admin_user: str | None = None
    replica_admin_password: SecretStr | None = None
    # Who writes the replication heartbeat on the primary: its own event scheduler (self-managed),
    # or a systemd timer on the primary region's first web node (managed).
    heartbeat: Literal["event scheduler", "web-node timer"] | None = None
    server_ca_path: str = SERVER_CA_PATH  # where every database Linode keeps `server_ca_cert`


class GuardOut(_Model):
    """A guard Linode (components/guard.py) that runs `drctl guard` (and `drctl watch` in
    dns-failover mode) for this stack, in a region that is not a shop region."""

    region: str
    label: str  # the Linode's label, unique in the account: the guard's holder/voter id
    ipv4: str  # a Linode reserved IP: known before the guard exists, kept when it is replaced
    # SLAAC, known once the guard exists: in the stack output, not in the guards' own copy of the
    # outputs (their user data), which cannot hold an address of the Linode it boots.
    ipv6: str | None = None


class AutomationOut(_Model):
    """Who promotes (`automation.promote`) and how `drctl guard` and `drctl watch` decide. The
    defaults are an older stack's behaviour: a person promotes, and probes confirm every 5 s."""

    promote: Literal["manual", "automatic"] = "manual"
    confirm_seconds: int = Field(60, ge=0)  # signals must agree this long before the guard promotes
    fast_interval: int = Field(5, ge=1)  # seconds between probes after a first failure (fast confirm)
    guards: tuple[GuardOut, ...] = ()  # empty with promote manual


class AccessOut(_Model):
    # Where operators run drctl: admitted to MySQL (3306) and the NodeBalancers' health path.
    operator_cidrs: tuple[str, ...] = ()


class ObjectivesOut(_Model):
    rto_seconds: int
    rpo_seconds: int
    worst_case_detection_seconds: int


class MediaRegionOut(_Model):
    region: str  # the shop region
    storage_region: str  # the Object Storage region holding its bucket (itself, or the nearest with it)
    bucket: str
    endpoint: str  # S3 endpoint host, or a URL (tests)


class MediaOut(_Model):
    """The shop's media buckets (components/media_storage.py) and drctl's key to them."""

    media_rpo_seconds: int
    access_key: SecretStr
    secret_key: SecretStr
    regions: tuple[MediaRegionOut, ...]

    def bucket(self, region: str) -> MediaRegionOut | None:
        return next((r for r in self.regions if r.region == region), None)


class BackupsOut(_Model):
    """The point-in-time-recovery archive (components/backups.py, docs/backups.md): its bucket, in a
    region other than the primary's, drctl's key to it, and the key everything in it is sealed with."""

    region: str  # the shop region whose bucket holds the archive
    storage_region: str
    bucket: str
    endpoint: str  # S3 endpoint host, or a URL (tests)
    access_key: SecretStr
    secret_key: SecretStr
    archive_key: SecretStr  # 32 bytes, base64: AES-256-GCM, client-side
    backup_rpo_seconds: int
    base_every_hours: int
    retention_days: int


class StackOutputs(_Model):
    project: str
    stack: str
    domain: str
    traffic_mode: Literal["load-balancer", "dns-failover"]
    health_path: str
    regions: tuple[RegionOut, ...] = Field(min_length=2)  # failover order: primary first
    monitor: MonitorOut
    cloudflare: CloudflareOut
    database: DatabaseOut
    objectives: ObjectivesOut
    fallback_page: FallbackPageOut | None = None  # None: traffic.fallbackPage.enabled false, or an older stack
    automation: AutomationOut = AutomationOut()  # default: an older stack, promoted by a person
    access: AccessOut = AccessOut()
    media: MediaOut | None = None  # None: a stack deployed before media buckets existed
    backups: BackupsOut | None = None  # None: a stack deployed before the archive existed

    def region(self, region_id: str, flag: str | None = None) -> RegionOut:
        """The region `region_id`; OutputsError naming `flag` (the option that gave it) otherwise."""
        for r in self.regions:
            if r.region == region_id:
                return r
        raise OutputsError(
            f"{flag + ': ' if flag else ''}not a region of stack {self.stack!r} "
            f"(got {region_id!r}; allowed: {', '.join(r.region for r in self.regions)})"
        )

    def replica(self, region_id: str) -> ReplicaOut:
        for r in self.database.replicas:
            if r.region == region_id:
                return r
        raise OutputsError(f"region {region_id!r} has no database replica in stack {self.stack!r}")

    def export(self) -> dict[str, Any]:
        """The JSON-able form the program exports, secrets included (Pulumi keeps it secret)."""
        return self.model_dump(mode="json", by_alias=True, context={"reveal_secrets": True})


def parse_outputs(doc: Any, source: str) -> StackOutputs:
    """Accept either the whole `pulumi stack output --json` map or just its `drctl` value."""
    if isinstance(doc, dict) and "drctl" in doc:
        doc = doc["drctl"]
    try:
        return StackOutputs.model_validate(doc)
    except ValidationError as err:
        errors = err.errors(include_url=False)
        shown = errors[:_SHOWN_PROBLEMS]
        more = f" ({len(errors)} problems, the first {len(shown)} below)" if len(errors) > len(shown) else ""
        lines = [f"{source}: {_where(e['loc'])}: {e['msg']}{_given(e)}" for e in shown]
        joint = " " if len(lines) == 1 else "\n"  # one problem, one line
        raise OutputsError(f"stack outputs do not match this drctl version{more}:{joint}" + "\n".join(lines)) from None


_SHOWN_PROBLEMS = 10
_SECRET_WORDS = ("password", "cert", "secret", "token", "key")


def _where(loc: tuple[Any, ...]) -> str:
    return "drctl" + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)


def _given(error: dict[str, Any]) -> str:
    """What the document held there, when it is a short scalar and cannot be a secret."""
    value = error.get("input")
    if error["type"] == "missing" or not isinstance(value, str | int | float | bool) or value is None:
        return ""
    if any(word in str(part).lower() for part in error["loc"] for word in _SECRET_WORDS):
        return ""
    text = repr(value)
    return f" (got {text if len(text) <= 60 else text[:57] + '...'})"


MAX_OUTPUTS_BYTES = 16 * 2**20  # a stack's outputs are a few kilobytes; /dev/zero is not
_SAVED = "a file saved by `pulumi stack output --json --show-secrets`"


def load_outputs(stack: str | None = None, outputs_file: str | None = None) -> StackOutputs:
    """Read the stack outputs from a file or from the Pulumi CLI; raise OutputsError."""
    if outputs_file:
        path = Path(outputs_file)
        try:
            with path.open("rb") as f:  # a pipe too: --outputs <(pulumi stack output --json --show-secrets)
                data = f.read(MAX_OUTPUTS_BYTES + 1)
            if len(data) > MAX_OUTPUTS_BYTES:
                raise OutputsError(f"--outputs: larger than {MAX_OUTPUTS_BYTES // 2**20} MiB (got {outputs_file}; "
                                   f"allowed: {_SAVED})")
            doc = json.loads(data.decode("utf-8"))
        except OSError as err:
            raise OutputsError(f"--outputs: cannot read it, {(err.strerror or str(err)).lower()} (got {outputs_file}; "
                               f"allowed: {_SAVED})") from None
        except ValueError as err:
            raise OutputsError(f"--outputs: not JSON, {err} (got {outputs_file}; allowed: {_SAVED})") from None
        return parse_outputs(doc, f"--outputs {outputs_file}")
    if not stack:
        raise OutputsError("give -s/--stack STACK (reads `pulumi stack output`) or --outputs FILE")
    if shutil.which("pulumi") is None:
        raise OutputsError(
            "-s/--stack needs the Pulumi CLI on PATH to read stack outputs; without it, save them on a "
            "machine that has it (`pulumi stack output --json --show-secrets -s STACK > outputs.json`) "
            "and pass --outputs outputs.json"
        )
    try:
        proc = subprocess.run(
            ["pulumi", "stack", "output", "--json", "--show-secrets", "--stack", stack],
            capture_output=True, text=True, timeout=120, check=False,
        )
    except subprocess.TimeoutExpired:
        raise OutputsError(f"-s/--stack: pulumi stack output --stack {stack} did not answer within 120 s") from None
    if proc.returncode != 0:
        raise OutputsError(f"-s/--stack: pulumi stack output --stack {stack} failed: {proc.stderr.strip()}")
    return parse_outputs(_json_after_warnings(proc.stdout, stack), f"-s/--stack {stack}")


def _json_after_warnings(text: str, stack: str) -> Any:
    """The JSON document `pulumi stack output --json` printed, past any warning lines it printed
    first (an update notice, a deprecation)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.lstrip().startswith(("{", "[")):
            try:
                return json.loads("\n".join(lines[i:]))
            except ValueError:
                continue
    raise OutputsError(f"-s/--stack: pulumi stack output --stack {stack} printed no JSON document "
                       f"(got {text.strip()[:80]!r})")
