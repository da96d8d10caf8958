"""The stack-config contract: every `woocommerce-dr:*` key, its default and its rules.

Read once in `__main__.py` with `load_stack_config()`. Field rules (types, ranges, allowed values)
are pydantic's; rules that tie fields together are the `@rule` methods below. Both kinds are
collected and reported together, one line each:

    woocommerce-dr:nodeBalancer.checkTimeout: must be below checkInterval (got 10; allowed: 1 to 9)

so one `pulumi preview` shows everything wrong with a stack file, not the first mistake only.
The keys around the project's are checked with them (`key_problems`): no namespace but the
project's, Pulumi's and the providers', and no provider credential in plain text. Whole-number
fields take whole numbers only, never true, 2.0 or "2". docs/config.md lists every key and rule.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
from collections.abc import Collection, Iterable, Mapping
from typing import Any, Literal

import annotated_types
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic.alias_generators import to_camel

from components import fallback_html
from components.firewall_rules import MAX_ADDRESSES as MAX_FIREWALL_ADDRESSES
from components.firewall_rules import MAX_SOURCE_PREFIX, too_wide
from components.regions import CLOUDFLARE_CHECK_REGIONS, LINODE_REGIONS, nearest_check_region
from components.server_names import longest_domain, name_problem
from drctl.stack.outputs import (
    PROMOTION_BUDGET_SECONDS,
    ProbeCounts,
    fast_confirm_detection_seconds,
    guard_cycle_slack_seconds,
)

NAMESPACE = "woocommerce-dr"

# Config namespaces a stack file may use besides the project's own: Pulumi's, and those of the
# providers the program creates resources with (requirements.txt). Any other is a misspelling whose
# keys nobody reads, such as `woocomerce-dr:sshKeys`.
PROVIDER_NAMESPACES = ("pulumi", "linode", "cloudflare", "random", "tls")

# Provider credentials, and the environment variable each provider reads when the key is absent.
# In a stack file they must be `secure:` values: plain text would sit in git, in CI logs and in
# every checkout.
PROVIDER_CREDENTIALS = {
    "linode:token": "LINODE_TOKEN",
    "cloudflare:apiToken": "CLOUDFLARE_API_TOKEN",
    "cloudflare:apiKey": "CLOUDFLARE_API_KEY",
    "cloudflare:apiUserServiceKey": "CLOUDFLARE_API_USER_SERVICE_KEY",
}

# The project's own credentials: `secure:` values only, like the providers'.
PROJECT_CREDENTIALS = (f"{NAMESPACE}:guardLinodeToken", f"{NAMESPACE}:guardCloudflareToken")

# Linode Managed MySQL: engine_config.binlog_retention_period is 600 to 86400 seconds.
MANAGED_BINLOG_RETENTION_MAX = 86400

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

_FQDN_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_CLOUDFLARE_ID = re.compile(r"^[0-9a-f]{32}$")
_SSH_KEY = re.compile(r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com) [A-Za-z0-9+/=]+( .*)?$")
_EXPECTED_CODES = re.compile(r"^[1-5]([0-9]{2}|xx)$")
_LINODE_TYPE = r"^g\d-[a-z0-9-]+$"
# The images the web-node and MySQL templates are written for: Ubuntu LTS, whose PHP-FPM socket link
# (/run/php/php-fpm.sock), MySQL 8 packages and mysqld.cnf layout they rely on. Anything else
# (Debian: another socket path and MariaDB instead of MySQL; a private image: unknown) is refused.
UBUNTU_LTS_IMAGES = ("linode/ubuntu24.04", "linode/ubuntu22.04")
UbuntuLtsImage = Literal[UBUNTU_LTS_IMAGES]  # type: ignore[valid-type]
_PATH = r"^/"
_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
_HTTPS_URL = r"^https://"
# A git repository drctl is cloned from: https, no credentials in the URL (it sits in git and plans).
_GIT_URL = r"^https://[^@\s/]+/[^@\s]+$"
_COMMIT = r"^[0-9a-f]{40}$"
# A URL drctl gets on a unit's command line (components/drctl_install.py): split at spaces by systemd, unquoted.
_URL_CHARACTERS = re.compile(r"^https://[A-Za-z0-9._~:/?#@&+,=%-]+$")
# API tokens are letters, digits, '-' and '_'; the rest is what an environment file carries unquoted.
_TOKEN = re.compile(r"^[A-Za-z0-9_.:=+/-]{16,256}$")
# Page text: printable, no control characters (a title on one line; a message may break lines).
_ONE_LINE = r"^[^\x00-\x1f\x7f]+$"
_PLAIN_TEXT = r"^[^\x00-\x09\x0b-\x1f\x7f]+$"

# What each pattern means, for the "allowed:" part of a message.
_PATTERN_WORDS = {
    _CLOUDFLARE_ID.pattern: "a 32-character hexadecimal Cloudflare id",
    _EXPECTED_CODES.pattern: 'an HTTP status code or class, quoted, such as "200" or "2xx"',
    _LINODE_TYPE: "a Linode type id such as g6-standard-2",
    _PATH: "a path starting with /",
    _EMAIL: "an email address",
    _HTTPS_URL: "an https:// URL",
    _GIT_URL: "an https:// git URL without credentials, such as https://github.com/example/woocommerce-dr.git",
    _COMMIT: "a full 40-character commit id (lower-case hex): a tag or branch can move",
    _ONE_LINE: "one line of text without control characters",
    _PLAIN_TEXT: "text without control characters (line breaks allowed)",
}


class Problem(Exception):
    """One thing wrong with one key: renders as the single line users see."""

    def __init__(self, path: str, problem: str, got: Any, allowed: str, namespace: str = NAMESPACE):
        self.path, self.problem, self.got, self.allowed = path, problem, got, allowed
        self.namespace = namespace
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.namespace}:{self.path}: {self.problem} (got {_show(self.got)}; allowed: {self.allowed})"


class ConfigError(Exception):
    """All problems of a stack config; `str()` is one line per problem."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def rule(*fields: str):
    """Mark a model method as a rule spanning `fields`; it runs only when all of them validated,
    so one bad value is reported once and never drags a misleading second message along."""

    def mark(fn):
        fn.__rule_fields__ = fields
        return fn

    return mark


class _Model(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True
    )

    @classmethod
    def rules(cls):
        for name in dir(cls):
            fn = getattr(cls, name, None)
            if callable(fn) and hasattr(fn, "__rule_fields__"):
                yield fn.__rule_fields__, fn


class RegionSpec(_Model):
    region: str = Field(description="a Linode region id such as us-east")
    web_nodes: int = Field(2, ge=1, le=25)
    instance_type: str = Field("g6-standard-2", pattern=_LINODE_TYPE)
    image: UbuntuLtsImage = "linode/ubuntu24.04"

    @rule("region")
    def _known_region(self, path: str) -> Iterable[Problem]:
        if self.region not in LINODE_REGIONS:
            hint = difflib.get_close_matches(self.region, list(LINODE_REGIONS), n=1)
            problem = f"{self.region!r} is not a Linode region"
            if hint:
                problem += f"; did you mean {hint[0]!r}?"
            yield Problem(f"{path}region", problem, self.region, ", ".join(sorted(LINODE_REGIONS)))


class NodeBalancerSpec(_Model):
    algorithm: Literal["roundrobin", "leastconn", "source"] = "roundrobin"
    check: Literal["connection", "http", "http_body"] = "connection"
    check_interval: int = Field(10, ge=2, le=3600)
    check_timeout: int = Field(5, ge=1, le=30)
    check_attempts: int = Field(3, ge=1, le=30)
    check_path: str = Field("/healthz", pattern=_PATH)
    check_body: str = Field('"db_reachable":true', min_length=1)

    @rule("check_interval", "check_timeout")
    def _timeout_below_interval(self, path: str) -> Iterable[Problem]:
        if self.check_timeout >= self.check_interval:
            yield Problem(
                f"{path}checkTimeout",
                f"must be below checkInterval ({self.check_interval})",
                self.check_timeout,
                f"1 to {min(30, self.check_interval - 1)}",
            )


class DatabaseSpec(_Model):
    mode: Literal["managed", "self-managed"] = "managed"
    type: str = Field("g6-dedicated-2", pattern=_LINODE_TYPE)
    cluster_size: Literal[1, 2, 3] = 3
    replica_type: str = Field("g6-standard-2", pattern=_LINODE_TYPE)
    replica_image: UbuntuLtsImage = "linode/ubuntu24.04"
    # A replica that was cut off must find every binlog it missed when it reconnects: a day at least.
    binlog_retention_seconds: int = Field(86400, ge=86400, le=604800 * 4)
    maintenance_day: Literal[WEEKDAYS] = "sunday"  # type: ignore[valid-type]
    maintenance_hour: int = Field(3, ge=0, le=23)

    @rule("mode", "binlog_retention_seconds")
    def _managed_binlog_retention(self, path: str) -> Iterable[Problem]:
        # The managed engine's binlog_retention_period is 600 to 86400 s: the API refuses more, and
        # it would refuse it half-way through an `up`, after the web tier was created.
        if self.mode == "managed" and self.binlog_retention_seconds > MANAGED_BINLOG_RETENTION_MAX:
            yield Problem(
                f"{path}binlogRetentionSeconds",
                f"a Linode managed database keeps binlogs at most {MANAGED_BINLOG_RETENTION_MAX} s",
                self.binlog_retention_seconds,
                f"{MANAGED_BINLOG_RETENTION_MAX} with mode managed; up to {604800 * 4} with mode self-managed",
            )

    @property
    def maintenance_day_number(self) -> int:
        """Linode numbers weekdays 1 (Monday) to 7 (Sunday)."""
        return WEEKDAYS.index(self.maintenance_day) + 1


class MonitorSpec(ProbeCounts, _Model):
    path: str = Field("/healthz", pattern=_PATH)
    interval: int = Field(60, ge=10, le=3600)
    timeout: int = Field(5, ge=1, le=10)
    retries: int = Field(2, ge=0, le=5)
    consecutive_down: int = Field(2, ge=0, le=10)
    consecutive_up: int = Field(2, ge=0, le=10)
    expected_codes: str = Field("200", pattern=_EXPECTED_CODES.pattern)
    # drctl watch and drctl guard only (Cloudflare's monitor has no such setting): after a first failed
    # probe they probe every fastInterval until consecutiveDown is reached, as HAProxy's `fastinter`.
    fast_interval: int = Field(5, ge=1, le=60)

    @property
    def worst_case_detection_seconds(self) -> int:
        """How long a dead origin can go unnoticed by Cloudflare's monitor: the last good probe can
        land just before the failure, then `consecutiveDown` intervals must fail, each probe waiting
        out its timeout on every retry."""
        return self.interval * self.fall + self.timeout * (self.retries + 1)

    @property
    def fast_confirm_detection_seconds(self) -> int:
        """The same for drctl watch and drctl guard, which confirm a first failure every fastInterval."""
        return fast_confirm_detection_seconds(self.interval, self.fall, self.fast_interval, self.timeout)

    @rule("interval", "timeout", "fast_interval")
    def _fast_interval_between_timeout_and_interval(self, path: str) -> Iterable[Problem]:
        # Below interval, or it is no faster; at least timeout, so one probe ends before the next starts.
        if self.timeout >= self.interval:
            return  # reported once, by _timeout_below_interval
        if not self.timeout <= self.fast_interval < self.interval:
            yield Problem(
                f"{path}fastInterval",
                f"must be at least timeout ({self.timeout}) and below interval ({self.interval})",
                self.fast_interval,
                f"{self.timeout} to {min(60, self.interval - 1)}",
            )

    @rule("interval", "timeout")
    def _timeout_below_interval(self, path: str) -> Iterable[Problem]:
        if self.timeout >= self.interval:
            yield Problem(
                f"{path}timeout",
                f"must be below interval ({self.interval})",
                self.timeout,
                f"1 to {min(10, self.interval - 1)}",
            )


class AlertsSpec(_Model):
    email: str | None = Field(None, pattern=_EMAIL)
    webhook_url: str | None = Field(None, pattern=_HTTPS_URL)


class FallbackPageSpec(_Model):
    """The maintenance page Cloudflare's edge answers when no region can (components/fallback_page.py)."""

    enabled: bool = True
    title: str = Field("We'll be right back", min_length=1, max_length=120, pattern=_ONE_LINE)
    message: str = Field(
        "The shop is briefly unavailable while we fix a problem. Please try again in a few minutes.",
        min_length=1, max_length=2000, pattern=_PLAIN_TEXT,
    )
    # What the 503's Retry-After asks browsers and crawlers to wait.
    retry_after_seconds: int = Field(300, ge=30, le=86400)
    # How long the edge waits for a region before it answers the page instead: below Cloudflare's
    # own 100 s origin timeout, above the slowest checkout a shopper should still wait for.
    # Below Cloudflare's own 100 s (its 524): a slower request would fail anyway, a faster one is never cut.
    origin_timeout_seconds: int = Field(90, ge=5, le=90)
    # The whole page from a file in the repository instead of title and message
    # (components/fallback_html.py: where it may live and what it may hold).
    html_file: str | None = Field(None, min_length=1, description=fallback_html.ALLOWED)

    @rule("html_file", "title", "message")
    def _page_from_one_source(self, path: str) -> Iterable[Problem]:
        # The file is the whole page: a title or message beside it would be silently ignored.
        given = [alias for name, alias in (("title", "title"), ("message", "message")) if name in self.model_fields_set]
        if self.html_file is not None and given:
            yield Problem(f"{path}htmlFile", f"cannot be combined with {' and '.join(given)}: the file is the whole "
                          f"page, so {' and '.join(given)} would be ignored", self.html_file,
                          f"either htmlFile, or title and message (remove {', '.join(given)} or htmlFile)")

    @rule("html_file")
    def _html_file_is_a_page(self, path: str) -> Iterable[Problem]:
        if self.html_file is None:
            return
        try:
            fallback_html.read_page(self.html_file)
        except fallback_html.PageFileError as err:
            yield Problem(f"{path}htmlFile", str(err), self.html_file, fallback_html.ALLOWED)


class TrafficSpec(_Model):
    mode: Literal["load-balancer", "dns-failover"] = "load-balancer"
    account_id: str = Field(pattern=_CLOUDFLARE_ID.pattern)
    zone_id: str = Field(pattern=_CLOUDFLARE_ID.pattern)
    monitor: MonitorSpec = MonitorSpec()
    # Empty means: for each pool, the Cloudflare region nearest its Linode region.
    check_regions: tuple[Literal[CLOUDFLARE_CHECK_REGIONS], ...] = ()  # type: ignore[valid-type]
    session_affinity: Literal["none", "cookie", "ip_cookie", "header"] = "none"
    alerts: AlertsSpec = AlertsSpec()
    fallback_page: FallbackPageSpec = FallbackPageSpec()


class AccessSpec(_Model):
    admin_cidrs: tuple[str, ...] = ()
    ssh_keys: tuple[str, ...] = ()
    # Where `drctl watch` (the DNS-failover watchdog, on a Linode in a third region) probes the
    # NodeBalancers from, around Cloudflare: their firewalls admit these on 80/443 as well.
    watchdog_cidrs: tuple[str, ...] = ()
    # Where operators run drctl (status, promote, drill): admitted to MySQL (3306) on every database
    # server and the managed allow-list, and to the NodeBalancers' health path, which drctl probes.
    operator_cidrs: tuple[str, ...] = ()

    @rule("operator_cidrs")
    def _operator_cidrs_are_networks(self, path: str) -> Iterable[Problem]:
        yield from _networks(self.operator_cidrs, f"{path}operatorCidrs",
                             "would open MySQL and the NodeBalancers to the whole internet",
                             "MySQL and the NodeBalancers")

    @rule("operator_cidrs", "watchdog_cidrs")
    def _origins_open_to_little_together(self, path: str) -> Iterable[Problem]:
        # Both lists open the NodeBalancers' 80/443 around Cloudflare, in one firewall: the policy pack
        # counts them together, so each may fit the budget while both do not.
        if not (self.operator_cidrs and self.watchdog_cidrs) or any(_networks_problems(c) for c in (
                self.operator_cidrs, self.watchdog_cidrs)):
            return
        both = [*self.watchdog_cidrs, *self.operator_cidrs]
        wide = too_wide(both)
        if wide:
            version, covered, _ = wide
            yield Problem(
                f"{path}operatorCidrs",
                f"with access.watchdogCidrs these networks cover {_as_prefix(version, covered)} of IPv{version} "
                f"({_amount(version, covered)}, overlaps merged): together they open the NodeBalancers, around "
                "Cloudflare, to a large share of the internet", list(self.operator_cidrs), SOURCE_BUDGET + " together",
            )

    @rule("admin_cidrs")
    def _admin_cidrs_are_networks(self, path: str) -> Iterable[Problem]:
        yield from _networks(self.admin_cidrs, f"{path}adminCidrs", "would open SSH to the whole internet",
                             "SSH")

    @rule("watchdog_cidrs")
    def _watchdog_cidrs_are_networks(self, path: str) -> Iterable[Problem]:
        yield from _networks(self.watchdog_cidrs, f"{path}watchdogCidrs",
                             "would open the NodeBalancers to the whole internet, around Cloudflare",
                             "the NodeBalancers (the origins), around Cloudflare,")

    @rule("ssh_keys")
    def _keys_are_openssh(self, path: str) -> Iterable[Problem]:
        for i, key in enumerate(self.ssh_keys):
            if "PRIVATE KEY" in key:
                # Never echo it back: it would land in CI logs.
                yield Problem(f"{path}sshKeys[{i}]", "is a private key; use the public key (the .pub file)",
                              "(not shown)", "a line such as 'ssh-ed25519 AAAA... you@laptop'")
            elif not _SSH_KEY.match(key):
                yield Problem(
                    f"{path}sshKeys[{i}]",
                    "not an OpenSSH public key",
                    key.split(" ", 1)[0][:24],
                    "a line such as 'ssh-ed25519 AAAA... you@laptop'",
                )


def _networks_problems(cidrs: tuple[str, ...]) -> bool:
    """Whether `_networks` reports anything for `cidrs` (then a rule over several lists stays quiet)."""
    return bool(list(_networks(cidrs, "", "", "")))


def _networks(cidrs: tuple[str, ...], where: str, whole_internet: str, opens: str) -> Iterable[Problem]:
    """Each entry a network in CIDR notation, none of them everything, and all of them together no
    large share of the internet (components/firewall_rules.py: MAX_SOURCE_PREFIX)."""
    allowed = "an IPv4 or IPv6 network such as 203.0.113.0/24, never 0.0.0.0/0 or ::/0"
    fine = True
    for i, cidr in enumerate(cidrs):
        try:
            net = ipaddress.ip_network(cidr, strict=True)
        except ValueError as err:
            yield Problem(f"{where}[{i}]", f"not a valid CIDR ({err})", cidr, allowed)
            fine = False
            continue
        if net.prefixlen == 0:
            yield Problem(f"{where}[{i}]", whole_internet, cidr, allowed)
            fine = False
    wide = too_wide(cidrs) if fine else None
    if wide:
        version, covered, _ = wide
        yield Problem(
            where,
            f"together these networks cover {_as_prefix(version, covered)} of IPv{version} "
            f"({_amount(version, covered)}, overlaps merged): that would open {opens} to a large share of the internet",
            list(cidrs), SOURCE_BUDGET,
        )


SOURCE_BUDGET = (f"networks that together cover at most a /{MAX_SOURCE_PREFIX[4]} of IPv4 "
                 f"({2 ** (32 - MAX_SOURCE_PREFIX[4]):,} addresses) and at most a /{MAX_SOURCE_PREFIX[6]} of IPv6")


def _amount(version: int, addresses: int) -> str:
    """IPv4 in addresses; IPv6 in /32s, whose address counts have 30 digits."""
    return f"{addresses:,} addresses" if version == 4 else f"the space of {addresses / 2 ** 96:,g} /32s"


def _as_prefix(version: int, addresses: int) -> str:
    """2**31 IPv4 addresses -> 'as much as a /1'; 3 * 2**24 -> 'more than a /7'."""
    bits = 32 if version == 4 else 128
    prefix = bits - (addresses.bit_length() - 1)
    return f"as much as a /{prefix}" if addresses & (addresses - 1) == 0 else f"more than a /{prefix}"


class DrctlSourceSpec(_Model):
    """Where a guard Linode gets drctl: this repository, at one commit."""

    repo: str = Field(pattern=_GIT_URL, description=_PATTERN_WORDS[_GIT_URL])
    commit: str = Field(pattern=_COMMIT, description=_PATTERN_WORDS[_COMMIT])


# Guards vote: a majority of at least two vantage points must see the primary lost (docs/guard.md).
MIN_GUARDS = 2
MAX_GUARDS = 5


class AutomationSpec(_Model):
    """Automatic failover by `drctl guard` on guard Linodes the stack deploys (components/guard.py)."""

    promote: Literal["manual", "automatic"] = "manual"
    # How long every signal must agree the primary is lost before a guard promotes.
    confirm_seconds: int = Field(60, ge=10, le=3600)
    # Regions of the guard Linodes, one guard each; none of them a shop region.
    guards: tuple[str, ...] = ()
    guard_type: str = Field("g6-nanode-1", pattern=_LINODE_TYPE)
    guard_image: UbuntuLtsImage = "linode/ubuntu24.04"
    drctl_source: DrctlSourceSpec | None = None

    @rule("guards")
    def _guards_are_regions(self, path: str) -> Iterable[Problem]:
        for i, region in enumerate(self.guards):
            if region not in LINODE_REGIONS:
                hint = difflib.get_close_matches(region, list(LINODE_REGIONS), n=1)
                yield Problem(f"{path}guards[{i}]", f"{region!r} is not a Linode region"
                              + (f"; did you mean {hint[0]!r}?" if hint else ""), region,
                              ", ".join(sorted(LINODE_REGIONS)))
            elif region in self.guards[:i]:
                yield Problem(f"{path}guards[{i}]", f"{region!r} is listed twice: two guards in one region "
                              "share one vantage point, and one outage silences both", region,
                              "each region once")
        if len(self.guards) > MAX_GUARDS:
            yield Problem(f"{path}guards", "too many guards", list(self.guards),
                          f"at most {MAX_GUARDS} regions (3 tolerate one guard lost)")

    @rule("promote", "guards", "drctl_source")
    def _automatic_needs_guards(self, path: str) -> Iterable[Problem]:
        if self.promote != "automatic":
            return  # manual: guards and drctlSource are kept but nothing is deployed (docs/guard.md)
        if len(self.guards) < MIN_GUARDS:
            yield Problem(
                f"{path}guards",
                f"automation.promote automatic needs at least {MIN_GUARDS} guard regions: a lone guard is "
                "one vantage point, and a vantage point cut off from the primary must never promote",
                list(self.guards),
                f"{MIN_GUARDS} to {MAX_GUARDS} Linode regions that are not shop regions; 3 tolerate one guard lost",
            )
        if self.drctl_source is None:
            yield Problem(
                f"{path}drctlSource", "required with automation.promote automatic: the guard Linodes install "
                "drctl from this repository at this commit", None,
                "a mapping with keys repo (https git URL) and commit (40-character commit id)",
            )


class ObjectivesSpec(_Model):
    rto_seconds: int = Field(300, ge=30, le=86400)
    rpo_seconds: int = Field(15, ge=0, le=86400)
    # How old the DR region's copy of the shop's uploads may be (components/media_storage.py). At
    # least 20 s: the replicator copies every quarter of it, and a copy takes some seconds itself.
    media_rpo_seconds: int = Field(300, ge=20, le=86400)
    # How old the newest archived transaction may be (components/backups.py). At least 30 s: the
    # archiver ships a piece every tenth of it (at most 10 s), and an upload takes some seconds.
    backup_rpo_seconds: int = Field(300, ge=30, le=86400)


class BackupsSpec(_Model):
    # Point-in-time recovery (components/backups.py, docs/backups.md): the binlog archive and base
    # backups in a bucket of another region than the primary's.
    enabled: bool = True
    # The shop region whose Object Storage keeps the archive and whose replica runs the archiver;
    # default: the last region of the failover order (StackConfig.archive_region).
    region: str | None = None
    # How often a base backup is taken, in hours (24: daily, 168: weekly). A restore replays at most
    # this much binlog on top of its base.
    base_every_hours: int = Field(24, ge=1, le=168)
    # How long base backups and the binlog after them are kept: the oldest moment one can restore to.
    retention_days: int = Field(14, ge=1, le=3650)


class MediaSpec(_Model):
    # The largest upload (a product image) nginx and PHP both accept, in megabytes; a 10 MB image
    # with its form fields needs some room above 10.
    max_upload_megabytes: int = Field(16, ge=1, le=1024)
    # How long a bucket keeps what deletes and copies moved to its attic/ (docs/media.md), in days.
    # It must outlast a whole failover + failback (the uploads a failback's copy shadowed are only
    # there), with time to notice and recover them: a month by default; at least a week, far above
    # objectives.mediaRpoSeconds (at most a day).
    attic_retention_days: int = Field(30, ge=7, le=3650)


class StackConfig(_Model):
    domain: str = Field(description="the shop's fully qualified domain name, such as shop.example.com")
    regions: tuple[RegionSpec, ...]
    node_balancer: NodeBalancerSpec = NodeBalancerSpec()
    database: DatabaseSpec = DatabaseSpec()
    traffic: TrafficSpec
    access: AccessSpec = AccessSpec()
    objectives: ObjectivesSpec = ObjectivesSpec()
    media: MediaSpec = MediaSpec()
    backups: BackupsSpec = BackupsSpec()
    automation: AutomationSpec = AutomationSpec()
    # The guards' own API tokens (least scopes: docs/guard.md), `secure:` values only; read with
    # automation.promote automatic.
    guard_linode_token: SecretStr | None = None
    guard_cloudflare_token: SecretStr | None = None

    @property
    def primary(self) -> RegionSpec:
        return self.regions[0]

    @property
    def automatic(self) -> bool:
        return self.automation.promote == "automatic"

    @property
    def automatic_detection_seconds(self) -> int:
        """Worst case for the guards to see the primary lost: their own probes, with fast confirm; in
        load-balancer mode they also wait for Cloudflare's pool health, so the slower of the two."""
        m = self.traffic.monitor
        if self.traffic.mode == "load-balancer":
            return max(m.fast_confirm_detection_seconds, m.worst_case_detection_seconds)
        return m.fast_confirm_detection_seconds

    @property
    def automatic_rto_seconds(self) -> int:
        """Worst-case recovery with automatic promotion: detection, the guard's next cycles (it notices
        the last signal turning, and the confirm time ending, only when it next looks), confirmation,
        promotion."""
        return (self.automatic_detection_seconds + self.guard_cycle_slack_seconds + self.automation.confirm_seconds
                + PROMOTION_BUDGET_SECONDS)

    @property
    def guard_cycle_slack_seconds(self) -> int:
        return guard_cycle_slack_seconds(self.traffic.monitor.fast_interval)

    def check_regions_for(self, region: str) -> tuple[str, ...]:
        return self.traffic.check_regions or (nearest_check_region(region),)

    @rule("domain")
    def _domain_is_fqdn(self, path: str) -> Iterable[Problem]:
        if not _is_fqdn(self.domain):
            yield Problem(
                f"{path}domain", "not a fully qualified domain name", self.domain,
                "lower-case labels of a-z, 0-9 and '-', separated by dots, such as shop.example.com",
            )

    @rule("domain", "regions")
    def _database_names_fit_dns(self, path: str) -> Iterable[Problem]:
        # The MySQL Linodes are published as mysql-<region>.db.<domain> (components/server_names.py).
        if not _is_fqdn(self.domain):
            return  # reported once, by _domain_is_fqdn
        regions = tuple(r.region for r in self.regions)
        problem = name_problem(self.domain, regions)
        if problem:
            yield Problem(f"{path}domain", f"too long: {problem}", self.domain,
                          f"a domain of at most {longest_domain(regions)} characters with these regions")

    @rule("regions")
    def _regions_form_a_failover_order(self, path: str) -> Iterable[Problem]:
        ids = [r.region for r in self.regions]
        if len(ids) < 2:
            yield Problem(
                f"{path}regions", "at least two regions are needed for failover", ids,
                "a list of 2 or more regions, the primary first",
            )
        for i, region in enumerate(ids):
            if region in ids[:i]:
                yield Problem(
                    f"{path}regions[{i}].region", f"{region!r} is listed twice", region,
                    "each region once; the failover order is the list order",
                )

    @rule("backups", "regions")
    def _archive_is_away_from_the_primary(self, path: str) -> Iterable[Problem]:
        # The archive protects against losing data and the primary's region: never in that region.
        # With three regions or more it also stays out of the region a failover promotes first (the
        # next in the failover order), so one failover never leaves primary and archive together.
        region = self.backups.region
        if region is None or not self.regions:
            return
        ids = [r.region for r in self.regions]
        allowed = ids[2:] if len(ids) >= 3 else ids[1:]
        if region not in allowed:
            why = ("the primary's region: the archive must survive losing it" if region == ids[0] else
                   "the region a failover promotes first (the next in regions): after one failover the archive "
                   "would share the new primary's region" if region in ids[1:2] else
                   "not one of the stack's regions")
            yield Problem(f"{path}backups.region", why, region,
                          f"one of the DR regions{' after the first' if len(ids) >= 3 else ''}: {', '.join(allowed)}")

    @rule("backups", "automation")
    def _archiver_needs_drctl(self, path: str) -> Iterable[Problem]:
        # The archiver runs drctl on the DR replica, installed like the guards' from a pinned commit.
        if self.backups.enabled and self.automation.drctl_source is None and not self.automatic:
            yield Problem(
                f"{path}automation.drctlSource", "required with backups.enabled: the DR replica in backups.region "
                "installs drctl from this repository at this commit to run the binlog archiver (drctl archive)",
                None, "a mapping with keys repo (https git URL) and commit (40-character commit id), "
                "or backups.enabled false")

    @property
    def archive_region(self) -> str:
        """backups.region, or by default the last region of the failover order: the first DR region
        with two regions, the one a failover reaches last with three or more."""
        return self.backups.region or self.regions[-1].region

    @rule("access", "regions", "database", "automation")
    def _admin_cidrs_fit_the_firewalls(self, path: str) -> Iterable[Problem]:
        # adminCidrs go into every web and database Cloud Firewall. Checked here, where all the
        # numbers are known: the database firewalls' own addresses are computed, so the API would
        # only refuse them half-way through an `up`.
        room = MAX_FIREWALL_ADDRESSES - self._largest_database_client_list() - len(self.access.operator_cidrs)
        if len(self.access.admin_cidrs) > room:
            yield Problem(
                f"{path}access.adminCidrs",
                f"too many networks: each database server's Cloud Firewall also admits its region's web "
                f"nodes, the other database servers, the guards and access.operatorCidrs, and holds at most "
                f"{MAX_FIREWALL_ADDRESSES} addresses",
                f"{len(self.access.admin_cidrs)} networks",
                f"at most {max(room, 0)} with these regions, webNodes, guards and operatorCidrs",
            )

    def _largest_database_client_list(self) -> int:
        """The most MySQL sources one database firewall admits (components/database.py): a region's
        web nodes plus every other MySQL Linode (a managed primary has no firewall and is no peer)."""
        servers = len(self.regions) - (1 if self.database.mode == "managed" else 0)
        firewalled = self.regions[1:] if self.database.mode == "managed" else self.regions
        guards = len(self.automation.guards) if self.automatic else 0  # one IPv4 address each
        return max((r.web_nodes for r in firewalled), default=0) + max(servers - 1, 0) + guards

    @rule("traffic", "access", "automation")
    def _watchdog_can_reach_the_origins(self, path: str) -> Iterable[Problem]:
        # In dns-failover mode drctl watch decides failover by probing each region's NodeBalancer
        # directly, and the NodeBalancer firewalls admit only Cloudflare, watchdogCidrs and the guard
        # Linodes (which run drctl watch with automatic promotion): with none of them every probe is
        # dropped, so the watchdog sees every region down, always.
        if self.traffic.mode == "dns-failover" and not self.access.watchdog_cidrs and not self.automatic:
            yield Problem(
                f"{path}access.watchdogCidrs",
                "required with traffic.mode dns-failover: drctl watch probes each region's NodeBalancer from "
                "these networks, and without them the firewalls drop every probe, so the watchdog could only "
                "ever see every region down",
                list(self.access.watchdog_cidrs),
                "the networks drctl watch runs in, such as ['203.0.113.7/32'] (or automation.promote automatic, "
                "whose guard Linodes run drctl watch)",
            )

    @rule("automation", "regions")
    def _guards_outside_shop_regions(self, path: str) -> Iterable[Problem]:
        shop = [r.region for r in self.regions]
        for i, region in enumerate(self.automation.guards):
            if region in shop:
                yield Problem(
                    f"{path}automation.guards[{i}]",
                    f"{region!r} is a shop region: a guard there goes dark with the primary it watches, "
                    "or sees it alive from inside a partition the rest of the world cannot reach",
                    region, f"a Linode region other than {', '.join(shop)}",
                )

    @rule("automation", "guard_linode_token", "guard_cloudflare_token")
    def _automatic_needs_tokens(self, path: str) -> Iterable[Problem]:
        if not self.automatic:
            return
        for key, value, scopes in (
            ("guardLinodeToken", self.guard_linode_token, "Linode token with Firewalls and Databases read/write"),
            ("guardCloudflareToken", self.guard_cloudflare_token,
             "Cloudflare token with the scopes listed in docs/guard.md"),
        ):
            if value is None:
                yield Problem(f"{path}{key}", "required with automation.promote automatic: the guards fence, "
                              "promote and move traffic with it", None,
                              f"a secure: value (`pulumi config set --secret {key} ...`): a {scopes}")
            elif not _TOKEN.match(value.get_secret_value()):
                # Never shown: it is a credential. It lands in a systemd environment file, unquoted.
                yield Problem(f"{path}{key}", "not an API token: 16 to 256 letters, digits and - _ . : = + / expected",
                              "(not shown)", f"a {scopes}, as the provider's console shows it")

    @rule("automation", "traffic", "backups")
    def _webhook_fits_the_guard_command_line(self, path: str) -> Iterable[Problem]:
        # The guards (automatic promotion) and the binlog archiver (backups) alert to it: it goes on
        # their command line, unquoted.
        url = self.traffic.alerts.webhook_url
        users = [who for who, deployed in (("the guards pass it to drctl guard --alert-webhook", self.automatic),
                                           ("the binlog archiver passes it to drctl archive --alert-webhook",
                                            self.backups.enabled)) if deployed]
        if users and url and not _URL_CHARACTERS.match(url):
            yield Problem(f"{path}traffic.alerts.webhookUrl", "holds characters a URL does not (spaces, quotes, "
                          f"backslashes): {' and '.join(users)}", url,
                          "an https:// URL with percent-encoded special characters (no ! or ;)")

    @rule("automation", "traffic", "objectives")
    def _automatic_promotion_fits_rto(self, path: str) -> Iterable[Problem]:
        if not self.automatic:
            return
        m, rto = self.traffic.monitor, self.objectives.rto_seconds
        total = self.automatic_rto_seconds
        if total > rto:
            if self.traffic.mode == "load-balancer":
                detection = (f"detection {self.automatic_detection_seconds} s (the slower of drctl guard, "
                             f"{m.fast_confirm_detection_seconds} s, and Cloudflare, {m.worst_case_detection_seconds} s)")
            else:
                detection = f"detection {self.automatic_detection_seconds} s (drctl guard, with fast confirm)"
            yield Problem(
                f"{path}automation.confirmSeconds",
                f"automatic failover takes up to {total} s but objectives.rtoSeconds is {rto} s: lower "
                "automation.confirmSeconds or traffic.monitor.interval, consecutiveDown, fastInterval, timeout "
                "(or retries, in load-balancer mode), or raise objectives.rtoSeconds",
                f"{detection} + next guard cycles 2 x fastInterval {self.guard_cycle_slack_seconds} s + "
                f"confirmSeconds {self.automation.confirm_seconds} s + promotion {PROMOTION_BUDGET_SECONDS} s = {total} s",
                f"at most {rto} s",
            )

    @rule("traffic", "objectives")
    def _detection_fits_rto(self, path: str) -> Iterable[Problem]:
        m, rto = self.traffic.monitor, self.objectives.rto_seconds
        worst = m.worst_case_detection_seconds
        if worst > rto:
            yield Problem(
                f"{path}traffic.monitor",
                f"worst-case failover detection takes {worst} s but objectives.rtoSeconds is "
                f"{rto} s: lower traffic.monitor.interval, consecutiveDown, timeout or retries, "
                "or raise objectives.rtoSeconds",
                f"interval {m.interval} x max(1, consecutiveDown {m.consecutive_down}) + timeout "
                f"{m.timeout} x (retries {m.retries} + 1) = {worst} s",
                f"at most {rto} s",
            )


def _is_fqdn(domain: str) -> bool:
    labels = domain.split(".")
    return (len(domain) <= 253 and len(labels) >= 2 and all(_FQDN_LABEL.match(label) for label in labels)
            and not labels[-1].isdigit())


def validate_stack_config(raw: Mapping[str, Any]) -> StackConfig:
    """Validate `{key: value}` (keys without the namespace) into a StackConfig, or raise
    ConfigError listing every problem found."""
    config, problems = _check(StackConfig, raw, "")
    if problems or config is None:
        raise ConfigError(problems)
    return config


def validate_config_map(config: Mapping[str, str | None], secret_keys: Collection[str] = ()) -> StackConfig:
    """Validate a whole stack config as the Pulumi CLI hands it to the program: full keys
    (`namespace:key`), values as strings, and which keys were `secure:`. Checks the keys
    (key_problems) and the project's values (validate_stack_config); ConfigError lists both."""
    problems = key_problems(config, secret_keys)
    prefix = f"{NAMESPACE}:"
    # Credentials stay text: an all-digit token must not turn into a number.
    raw = {key[len(prefix):]: value if key in PROJECT_CREDENTIALS else parse_config_value(value)
           for key, value in config.items() if key.startswith(prefix)}
    stack_config = None
    try:
        stack_config = validate_stack_config(raw)
    except ConfigError as err:
        problems.extend(err.problems)
    if problems or stack_config is None:
        raise ConfigError(problems)
    return stack_config


def key_problems(keys: Iterable[str], secret_keys: Collection[str]) -> list[Problem]:
    """Keys in a namespace nothing reads, and provider credentials given in plain text."""
    known = (NAMESPACE, *PROVIDER_NAMESPACES)
    problems = []
    for key in sorted(keys):
        namespace, _, name = key.partition(":")
        if namespace not in known:
            hint = difflib.get_close_matches(namespace, known, n=1, cutoff=0.6)
            problems.append(Problem(
                name, "unknown config namespace, so nothing would read this key"
                + (f"; did you mean '{hint[0]}:{name}'?" if hint else ""),
                namespace, ", ".join(known), namespace=namespace))
        elif key in PROVIDER_CREDENTIALS and key not in secret_keys:
            problems.append(Problem(
                name, "a provider credential in plain text", "(not shown)",
                f"a secure: value (`pulumi config set --secret {key} ...`), or no {key} in the stack file "
                f"and {PROVIDER_CREDENTIALS[key]} in the environment or a Pulumi ESC environment",
                namespace=namespace))
        elif key in PROJECT_CREDENTIALS and key not in secret_keys:
            problems.append(Problem(
                name, "a credential in plain text", "(not shown)",
                f"a secure: value (`pulumi config set --secret {name} ...`)", namespace=namespace))
    return problems


def load_stack_config() -> StackConfig:
    """Read every key of the running Pulumi stack; raise `pulumi.RunError` (which Pulumi prints
    without a traceback) listing every problem."""
    import pulumi
    from pulumi.runtime import config as runtime_config

    keys = set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())
    # The SDK keeps the secret keys it was given in-process; the language host passes them in the
    # environment.
    secret = {k for k in keys if runtime_config.is_config_secret(k)} | set(runtime_config.get_config_secret_keys_env())
    config = {key: runtime_config.get_config(key) if key.startswith(f"{NAMESPACE}:") else None for key in keys}
    try:
        return validate_config_map(config, secret)
    except ConfigError as err:
        raise pulumi.RunError(f"invalid stack configuration:\n{err}") from None


def parse_config_value(text: str | None) -> Any:
    """Pulumi hands structured values over as JSON text and scalars as plain strings."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


# --- validation that keeps going ------------------------------------------------------------------
#
# Each field is validated on its own and nested models recursively, so a bad value in one place does
# not hide problems elsewhere; a model's rules then run over the fields that did validate.


def _check(model: type[_Model], raw: Any, path: str) -> tuple[Any, list[Problem]]:
    """Validate `raw` as `model` at config path `path` (empty, or ending in '.').
    Returns (instance or None, problems)."""
    where = path.rstrip(".") or "(stack config)"
    if not isinstance(raw, Mapping):
        return None, [Problem(where, "not a mapping of keys", raw, _describe(model))]
    problems: list[Problem] = []
    by_alias = {f.alias or name: name for name, f in model.model_fields.items()}
    for key in raw:
        if key not in by_alias:
            problems.append(_unknown_key(f"{path}{key}", key, list(by_alias)))

    valid: dict[str, Any] = {}
    failed: set[str] = set()
    for alias, name in by_alias.items():
        field = model.model_fields[name]
        if alias not in raw:
            if field.is_required():
                problems.append(Problem(f"{path}{alias}", "required key is missing", None,
                                        field.description or _describe(field.annotation, field.metadata)))
                failed.add(name)
            continue
        value, field_problems = _check_field(field, raw[alias], f"{path}{alias}")
        problems.extend(field_problems)
        if value is _INVALID:
            failed.add(name)
        else:
            valid[name] = value

    # Rules read only fields that validated, so a partial, unvalidated instance is enough for them.
    partial = model.model_construct(**valid)
    for fields, check in model.rules():
        if not failed.intersection(fields):
            problems.extend(check(partial, path))
    return (None if failed else model.model_validate(valid)), problems


_INVALID = object()


def _check_field(field: Any, raw: Any, path: str) -> tuple[Any, list[Problem]]:
    from typing import get_origin

    sub = _model_in(field.annotation)
    if sub is not None and get_origin(field.annotation) is tuple:
        if not isinstance(raw, list):
            return _INVALID, [Problem(path, "not a list", raw, _describe(field.annotation))]
        items = [_check(sub, item, f"{path}[{i}].") for i, item in enumerate(raw)]
        problems = [p for _, item_problems in items for p in item_problems]
        if any(instance is None for instance, _ in items):
            return _INVALID, problems
        return tuple(instance for instance, _ in items), problems
    if sub is not None:
        instance, problems = _check(sub, raw, f"{path}.")
        return (_INVALID if instance is None else instance), problems
    if _loosely_typed(field.annotation, raw):
        return _INVALID, [Problem(path, "not a whole number", raw, _describe(field.annotation, field.metadata))]
    try:
        return _field_adapter(field).validate_python(raw), []
    except ValidationError as err:
        return _INVALID, [_from_pydantic(e, path, field) for e in err.errors()]


def _loosely_typed(annotation: Any, raw: Any) -> bool:
    """A whole-number field given true, 2.0 or "2". Pydantic would take each as a number (true is
    1), and YAML makes them easy to write by accident (`webNodes: yes`, `webNodes: 2.0`); a stack file
    gets the type a field declares. Literal[1, 2, 3] is covered too: pydantic takes true for 1 there."""
    from typing import get_args, get_origin

    types = {type(a) for a in get_args(annotation)} if get_origin(annotation) is Literal else {annotation}
    return int in types and type(raw) is not int


def _field_adapter(field: Any):
    from typing import Annotated

    from pydantic import TypeAdapter

    if not field.metadata:
        return TypeAdapter(field.annotation)
    return TypeAdapter(Annotated[(field.annotation, *field.metadata)])


def _from_pydantic(error: Mapping[str, Any], path: str, field: Any) -> Problem:
    index = "".join(f"[{p}]" for p in error["loc"] if isinstance(p, int))
    if index:
        from typing import get_args

        item = next(a for a in get_args(field.annotation) if a is not Ellipsis)
        allowed = _describe(item)
    else:
        allowed = field.description or _describe(field.annotation, field.metadata)
    problem = _problem_text(error["type"], error["msg"])
    got = error.get("input")
    if "token" in path.lower() or (path.endswith("drctlSource.repo") and "@" in str(got)):
        got = "(not shown)"  # never echo a credential, even a malformed one, or a URL that may carry one
    if error["type"] == "literal_error" and isinstance(got, str):
        hint = difflib.get_close_matches(got, [a.strip() for a in allowed.split(",")], n=1, cutoff=0.6)
        problem += f"; did you mean {hint[0]!r}?" if hint else ""
    return Problem(path + index, problem, got, allowed)


def _unknown_key(path: str, key: Any, allowed: list[str]) -> Problem:
    hint = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
    if not hint:
        hint = [a for a in allowed if a.lower() == str(key).lower()]
    problem = "unknown key" + (f"; did you mean {hint[0]!r}?" if hint else "")
    return Problem(path, problem, key, ", ".join(allowed))


def _problem_text(kind: str, msg: str) -> str:
    return {
        "greater_than_equal": "out of range",
        "less_than_equal": "out of range",
        "greater_than": "out of range",
        "less_than": "out of range",
        "literal_error": "not an allowed value",
        "string_pattern_mismatch": "malformed value",
        "int_parsing": "not a whole number",
        "int_type": "not a whole number",
        "int_from_float": "not a whole number",
        "bool_parsing": "not true or false",
        "string_type": "not a string",
        "model_type": "not a mapping of keys",
        "dict_type": "not a mapping of keys",
        "list_type": "not a list",
        "tuple_type": "not a list",
        "string_too_short": "must not be empty",
    }.get(kind, msg[0].lower() + msg[1:])


def _model_in(annotation: Any):
    from typing import get_args

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _aliases(model: Any) -> list[str]:
    if model is None:
        return []
    return [f.alias or n for n, f in model.model_fields.items()]


def _describe(annotation: Any, metadata: list[Any] | None = None) -> str:
    """Human words for what a field accepts."""
    from typing import get_args, get_origin

    metadata = metadata or []
    lo = next((m.ge for m in metadata if isinstance(m, annotated_types.Ge)), None)
    hi = next((m.le for m in metadata if isinstance(m, annotated_types.Le)), None)
    if lo is not None and hi is not None:
        return f"{lo} to {hi}"
    if lo is not None:
        return f"{lo} or more"
    if get_origin(annotation) is Literal:
        return ", ".join(str(a) for a in get_args(annotation))
    pattern = next((getattr(m, "pattern", None) for m in metadata if getattr(m, "pattern", None)), None)
    if pattern:
        return _PATTERN_WORDS.get(pattern, f"text matching {pattern}")
    if annotation is bool:
        return "true, false"
    if annotation is int:
        return "a whole number"
    model = _model_in(annotation)
    if model is not None:
        prefix = "a list of mappings with keys " if get_origin(annotation) is tuple else "a mapping with keys "
        return prefix + ", ".join(_aliases(model))
    if get_origin(annotation) is tuple:
        item = get_args(annotation)[0]
        return "a list of strings" if item is str else "a list of " + _describe(item)
    return "a string" if annotation is str else str(annotation)


def _show(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, str):
        return repr(value)
    return json.dumps(value, default=str)
