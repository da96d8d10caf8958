"""The corpus of bad stack files: every one is refused by `drctl plan --stack-file` with exit 2, no
traceback, and one line naming the key, what was given and what is allowed.

Each case is a real stack file's text: Pulumi.prod.yaml with one edit (so the YAML itself is what a
user would write, coercions included), or a whole text where the file's shape is the point. Most run
through `drctl.cli.main` in this process (the real command, loader and program, under the mock
engine); a few run as `python -m drctl plan`, the way a user types it.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from drctl.cli import main
from drctl.stack.files import REPO_ROOT

PROD = (REPO_ROOT / "Pulumi.prod.yaml").read_text(encoding="utf-8")


def prod(*edits: tuple[str, str]) -> str:
    """Pulumi.prod.yaml with each (old, new) replaced once; `old` must be there."""
    text = PROD
    for old, new in edits:
        assert old in text, f"not in Pulumi.prod.yaml: {old!r}"
        text = text.replace(old, new, 1)
    return text


# The line number of the first line `add` appends.
APPENDED = len(PROD.splitlines()) + 1


def add(lines: str) -> str:
    """Pulumi.prod.yaml with config keys appended (config: is its last top-level key)."""
    return PROD + lines


def without(key: str) -> str:
    """Pulumi.prod.yaml without the config key `key` and its indented block."""
    lines = PROD.splitlines(keepends=True)
    start = lines.index(f"  woocommerce-dr:{key}:\n")
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith("    ")), len(lines))
    return "".join(lines[:start] + lines[end:])


def monitor(old: str, new: str) -> tuple[str, str]:
    return (f"      {old}\n", f"      {new}\n")


COMMIT = "0123456789abcdef0123456789abcdef01234567"
AUTOMATIC = f"""  woocommerce-dr:automation:
    promote: automatic
    confirmSeconds: 60
    guards: [us-central, eu-central]
    drctlSource:
      repo: https://github.com/example/woocommerce-dr.git
      commit: "{COMMIT}"
  woocommerce-dr:guardLinodeToken:
    secure: v1:placeholder
  woocommerce-dr:guardCloudflareToken:
    secure: v1:placeholder
"""


def automatic(*edits: tuple[str, str]) -> str:
    """Pulumi.prod.yaml with automatic promotion turned on (as the README shows), then `edits`."""
    text = without("automation") + AUTOMATIC
    for old, new in edits:
        assert old in text, f"not in the automatic prod file: {old!r}"
        text = text.replace(old, new, 1)
    return text


@dataclass(frozen=True)
class Case:
    name: str
    text: str | bytes
    line: str  # the one problem line must contain this


CIDR_ONLY = "an IPv4 or IPv6 network such as 203.0.113.0/24, never 0.0.0.0/0 or ::/0"
BUDGET = "networks that together cover at most a /8 of IPv4 (16,777,216 addresses) and at most a /32 of IPv6"
STACK_FILE = "a mapping with a 'config:' key, as `pulumi config set` writes"
CONFIG = "a mapping of 'namespace:key: value' lines, such as 'woocommerce-dr:domain: shop.example.com'"
SYNTAX = "a YAML mapping such as 'config:' with indented 'namespace:key: value' lines"
BOMB = "".join(f"  {n}: &{n} [{','.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdef", "bcdefg", strict=True))
PAGE_FILE = ("a path relative to the project directory of a well-formed UTF-8 HTML page with a <title>, at most "
             "256 KiB, such as docs/fallback-page.example.html")
PAGES = "tests/program/fallback-pages"  # one mistake per file


def page(*keys: str) -> str:
    """Pulumi.prod.yaml with traffic.fallbackPage set to `keys` (lines such as 'htmlFile: x.html')."""
    zone = '    zoneId: "00000000000000000000000000000000"\n'
    return prod((zone, zone + "    fallbackPage:\n" + "".join(f"      {k}\n" for k in keys)))


DNS_MODE = ("    mode: load-balancer\n", "    mode: dns-failover\n")

CASES = [
    # --- the file itself: shape, encoding, YAML the Pulumi CLI refuses -----------------------------
    Case("top-level-list", "- config:\n    woocommerce-dr:domain: shop.example.com\n",
         f"x.yaml: (top level): not a stack file (got a list of 1 item; allowed: {STACK_FILE})"),
    Case("top-level-scalar", "shop.example.com\n",
         f"x.yaml: (top level): not a stack file (got the text 'shop.example.com'; allowed: {STACK_FILE})"),
    Case("top-level-number", "42\n", "x.yaml: (top level): not a stack file (got the number 42; allowed: "),
    Case("empty-file", "", f"x.yaml: (top level): the file is empty (got nothing; allowed: {STACK_FILE})"),
    Case("comments-only", "# config: to come\n", "x.yaml: (top level): the file is empty (got nothing; allowed: "),
    Case("latin-1-byte", PROD.replace("shop.example.com", "caf\xe9.example.com").encode("latin-1"),
         "x.yaml:11: (text): not UTF-8 text (got byte 0xe9; allowed: a UTF-8 encoded file, as `pulumi config set` "
         "writes)"),
    Case("utf-16-file", PROD.encode("utf-16"), "x.yaml:1: (text): not UTF-8 text (got byte 0xff; allowed: "),
    Case("nul-byte", prod(("shop.example.com", "shop\x00.example.com")),
         "x.yaml:11: (text): a control character YAML does not allow (got character U+0000; allowed: printable "
         "text, tabs and line breaks)"),
    Case("no-config-key", "encryptionsalt: v1:abc\n",
         f"x.yaml: config: required key is missing (got top-level keys 'encryptionsalt'; allowed: {STACK_FILE})"),
    Case("config-misspelled", PROD.replace("\nconfig:\n", "\nconfg:\n"),
         "x.yaml: config: required key is missing; is 'confg' meant to be config? (got top-level keys 'confg'; "
         "allowed: "),
    Case("config-is-a-list", "config:\n  - woocommerce-dr:domain: shop.example.com\n",
         f"x.yaml: config: not a mapping of keys (got a list of 1 item; allowed: {CONFIG})"),
    Case("config-is-a-string", "config: shop.example.com\n",
         "x.yaml: config: not a mapping of keys (got the text 'shop.example.com'; allowed: "),
    Case("config-is-empty", "config:\n", f"x.yaml: config: not a mapping of keys (got nothing; allowed: {CONFIG})"),
    Case("config-is-an-empty-mapping", "config: {}\n", "x.yaml: config: not a mapping of keys (got an empty mapping; "),
    Case("config-key-a-number", add("  123: x\n"),
         "x.yaml: config.123: not a config key (got 123; allowed: 'namespace:key' or 'key', such as "
         "'woocommerce-dr:domain')"),
    Case("config-key-two-colons", add("  woocommerce-dr:access:adminCidrs: []\n"),
         "x.yaml: config.woocommerce-dr:access:adminCidrs: not a config key (got "
         "'woocommerce-dr:access:adminCidrs'; allowed: "),
    Case("config-key-empty-namespace", add("  :domain: shop.example.com\n"),
         "x.yaml: config.:domain: not a config key (got ':domain'; allowed: "),
    Case("config-key-a-list", add("  ? [a, b]\n  : c\n"),
         f"x.yaml:{APPENDED}: config: a key must be a plain name (got a list or mapping as a key; allowed: "),
    Case("duplicate-config-key", add("  woocommerce-dr:domain: other.example.com\n"),
         f"x.yaml:{APPENDED}: config.woocommerce-dr:domain: duplicate key, first given at line 11 (got "
         "'woocommerce-dr:domain' twice; allowed: each key once per mapping, as the Pulumi CLI requires)"),
    Case("duplicate-nested-key", prod(("      webNodes: 2\n", "      webNodes: 2\n      webNodes: 3\n")),
         "x.yaml:15: config.woocommerce-dr:regions[0].webNodes: duplicate key, first given at line 14 (got "
         "'webNodes' twice; "),
    Case("duplicate-token-key", add("  linode:token: plain\n"),
         f"x.yaml:{APPENDED}: config.linode:token: duplicate key, first given at line 7 (got 'linode:token' twice; "),
    Case("duplicate-config-section", add("config:\n  woocommerce-dr:domain: b.example.com\n"),
         f"x.yaml:{APPENDED}: config: duplicate key, first given at line 6 (got 'config' twice; "),
    Case("alias-bomb", "config:\n  a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n" + BOMB,
         "x.yaml:6: config.e[0]: the file expands to more than 10000 values once its aliases are expanded (got "
         "more than 10000 values; allowed: at most 10000 values, every alias expanded)"),
    Case("recursive-alias", "config:\n  woocommerce-dr:regions: &r [*r]\n",
         "x.yaml:2: config.woocommerce-dr:regions[0]: an alias refers to the value that contains it (got a "
         "recursive alias; allowed: aliases to complete, earlier values only)"),
    Case("undefined-alias", add("  woocommerce-dr:extra: *nowhere\n"),
         f"x.yaml:{APPENDED}: (YAML syntax): not valid YAML: found undefined alias 'nowhere' (got "
         "'woocommerce-dr:extra: *nowhere'; allowed: " + SYNTAX + ")"),
    Case("nested-too-deep", add("  woocommerce-dr:extra: " + "[" * 40 + "]" * 40 + "\n"),
         f"x.yaml:{APPENDED}: config.woocommerce-dr:extra" + "[0]" * 31 + ": nested more than 32 levels deep (got 33 levels; allowed: "
         "at most 32 levels of lists and mappings)"),
    Case("tab-indentation", prod(("    - region: us-east\n", "    - region: us-east\n\t  webNodes: 1\n")),
         "(YAML syntax): not valid YAML: "),
    # The file's last line: the quote runs to the end of the stream.
    Case("unclosed-quote", prod(('      commit: "0000000000000000000000000000000000000000"\n',
                                 '      commit: "0000000000000000000000000000000000000000\n')),
         f"x.yaml:{APPENDED - 1}: (YAML syntax): not valid YAML: while scanning a quoted scalar, found unexpected end "
         "of stream (got 'commit: \"0000000000000000000000000000000000000000'; allowed: "),
    Case("bad-indentation", prod(("  woocommerce-dr:domain: shop.example.com\n",
                                  "  woocommerce-dr:domain: shop.example.com\n   stray: 1\n")),
         "x.yaml:12: (YAML syntax): not valid YAML: mapping values are not allowed here (got 'stray: 1'; allowed: "),
    Case("two-documents", PROD + "---\n" + PROD,
         f"x.yaml:{APPENDED}: (YAML syntax): not valid YAML: expected a single document in the stream, but found another "
         "document (got '---'; allowed: "),
    Case("binary-tag", add("  woocommerce-dr:extra: !!binary aGVsbG8=\n"),
         f"x.yaml:{APPENDED}: config.woocommerce-dr:extra: the YAML tag !!binary is not supported (got '!!binary'; allowed: "
         "plain strings, numbers, true/false, null, lists and mappings)"),
    Case("set-tag", add("  woocommerce-dr:extra: !!set {a, b}\n"),
         "config.woocommerce-dr:extra: the YAML tag !!set is not supported (got '!!set'; "),
    Case("timestamp-tag", add("  woocommerce-dr:extra: !!timestamp 2024-01-01\n"),
         "config.woocommerce-dr:extra: the YAML tag !!timestamp is not supported (got '!!timestamp'; "),
    Case("python-object-tag", add("  woocommerce-dr:extra: !!python/object/apply:os.system [true]\n"),
         "the YAML tag !!python/object/apply:os.system is not supported"),
    Case("custom-tag", add("  woocommerce-dr:extra: !Ref other\n"), "the YAML tag !Ref is not supported (got '!Ref'; "),

    # --- keys around the project's: namespaces and credentials --------------------------------------
    Case("misspelled-namespace", add("  woocomerce-dr:sshKeys: []\n"),
         "woocomerce-dr:sshKeys: unknown config namespace, so nothing would read this key; did you mean "
         "'woocommerce-dr:sshKeys'? (got 'woocomerce-dr'; allowed: woocommerce-dr, pulumi, linode, cloudflare, "
         "random, tls)"),
    Case("foreign-namespace", add("  aws:region: us-east-1\n"),
         "aws:region: unknown config namespace, so nothing would read this key (got 'aws'; allowed: woocommerce-dr, "),
    Case("plain-linode-token", prod(("  linode:token:\n    secure: v1:placeholder-set-with-pulumi-config-set-secret\n",
                                     "  linode:token: 0123456789abcdef0123456789abcdef\n")),
         "linode:token: a provider credential in plain text (got '(not shown)'; allowed: a secure: value (`pulumi "
         "config set --secret linode:token ...`), or no linode:token in the stack file and LINODE_TOKEN in the "
         "environment or a Pulumi ESC environment)"),
    Case("plain-cloudflare-token", prod(("  cloudflare:apiToken:\n    secure: v1:placeholder-set-with-pulumi-config-set-"
                                         "secret\n", "  cloudflare:apiToken: abc123\n")),
         "cloudflare:apiToken: a provider credential in plain text (got '(not shown)'; allowed: a secure: value "
         "(`pulumi config set --secret cloudflare:apiToken ...`), or no cloudflare:apiToken in the stack file and "
         "CLOUDFLARE_API_TOKEN in the environment"),
    Case("plain-cloudflare-api-key", add("  cloudflare:apiKey: abc123\n"),
         "cloudflare:apiKey: a provider credential in plain text (got '(not shown)'; allowed: a secure: value "),
    Case("token-as-a-mapping", prod(("    secure: v1:placeholder-set-with-pulumi-config-set-secret\n",
                                     "    value: 0123456789abcdef\n")),
         "linode:token: a provider credential in plain text (got '(not shown)'; "),

    # --- regions ----------------------------------------------------------------------------------
    Case("web-nodes-true", prod(("      webNodes: 2\n", "      webNodes: true\n")),
         "woocommerce-dr:regions[0].webNodes: not a whole number (got true; allowed: 1 to 25)"),
    Case("web-nodes-yes", prod(("      webNodes: 2\n", "      webNodes: yes\n")),
         "woocommerce-dr:regions[0].webNodes: not a whole number (got 'yes'; allowed: 1 to 25)"),
    Case("web-nodes-float", prod(("      webNodes: 2\n", "      webNodes: 2.0\n")),
         "woocommerce-dr:regions[0].webNodes: not a whole number (got 2.0; allowed: 1 to 25)"),
    Case("web-nodes-quoted", prod(("      webNodes: 2\n", '      webNodes: "2"\n')),
         "woocommerce-dr:regions[0].webNodes: not a whole number (got '2'; allowed: 1 to 25)"),
    Case("web-nodes-zero", prod(("      webNodes: 2\n", "      webNodes: 0\n")),
         "woocommerce-dr:regions[0].webNodes: out of range (got 0; allowed: 1 to 25)"),
    Case("web-nodes-too-many", prod(("      webNodes: 2\n", "      webNodes: 26\n")),
         "woocommerce-dr:regions[0].webNodes: out of range (got 26; allowed: 1 to 25)"),
    Case("web-nodes-base-60", prod(("      webNodes: 2\n", "      webNodes: 1:30\n")),
         "woocommerce-dr:regions[0].webNodes: not a whole number (got '1:30'; allowed: 1 to 25)"),
    Case("region-misspelled", prod(("    - region: eu-west\n", "    - region: eu-wst\n")),
         "woocommerce-dr:regions[1].region: 'eu-wst' is not a Linode region; did you mean 'eu-west'? (got 'eu-wst'; "
         "allowed: ap-northeast, "),
    Case("region-twice", prod(("    - region: eu-west\n", "    - region: us-east\n")),
         "woocommerce-dr:regions[1].region: 'us-east' is listed twice (got 'us-east'; allowed: each region once; "
         "the failover order is the list order)"),
    Case("one-region", prod(("    - region: eu-west\n      webNodes: 2\n      instanceType: g6-standard-2\n", "")),
         'woocommerce-dr:regions: at least two regions are needed for failover (got ["us-east"]; allowed: a list of '
         "2 or more regions, the primary first)"),
    Case("regions-missing", without("regions"),
         "woocommerce-dr:regions: required key is missing (got nothing; allowed: a list of mappings with keys region, "
         "webNodes, instanceType, image)"),
    Case("regions-a-string", prod(("  woocommerce-dr:regions:\n    - region: us-east\n      webNodes: 2\n      "
                                   "instanceType: g6-standard-2\n    - region: eu-west\n      webNodes: 2\n      "
                                   "instanceType: g6-standard-2\n", "  woocommerce-dr:regions: us-east, eu-west\n")),
         "woocommerce-dr:regions: not a list (got 'us-east, eu-west'; allowed: a list of mappings with keys region, "
         "webNodes, instanceType, image)"),
    Case("regions-empty-list", prod(("  woocommerce-dr:regions:\n    - region: us-east\n      webNodes: 2\n      "
                                     "instanceType: g6-standard-2\n    - region: eu-west\n      webNodes: 2\n      "
                                     "instanceType: g6-standard-2\n", "  woocommerce-dr:regions: []\n")),
         "woocommerce-dr:regions: at least two regions are needed for failover (got []; allowed: "),
    Case("region-key-missing", prod(("    - region: eu-west\n      webNodes: 2\n", "    - webNodes: 2\n")),
         "woocommerce-dr:regions[1].region: required key is missing (got nothing; allowed: a Linode region id such as "
         "us-east)"),
    Case("region-key-unknown", prod(("      instanceType: g6-standard-2\n", "      instanceType: g6-standard-2\n"
                                                                           "      zone: a\n")),
         "woocommerce-dr:regions[0].zone: unknown key (got 'zone'; allowed: region, webNodes, instanceType, image)"),
    Case("web-nodes-misspelled", prod(("      webNodes: 2\n", "      webnodes: 2\n")),
         "woocommerce-dr:regions[0].webnodes: unknown key; did you mean 'webNodes'? (got 'webnodes'; allowed: "
         "region, webNodes, instanceType, image)"),
    Case("instance-type-malformed", prod(("      instanceType: g6-standard-2\n", "      instanceType: standard-2\n")),
         "woocommerce-dr:regions[0].instanceType: malformed value (got 'standard-2'; allowed: a Linode type id such "
         "as g6-standard-2)"),
    Case("image-malformed", prod(("      webNodes: 2\n", "      webNodes: 2\n      image: ubuntu\n")),
         "woocommerce-dr:regions[0].image: not an allowed value (got 'ubuntu'; allowed: linode/ubuntu24.04, "
         "linode/ubuntu22.04)"),
    Case("image-debian", prod(("      webNodes: 2\n", "      webNodes: 2\n      image: linode/debian12\n")),
         "woocommerce-dr:regions[0].image: not an allowed value; did you mean 'linode/ubuntu24.04'? (got "
         "'linode/debian12'; allowed: "
         "linode/ubuntu24.04, linode/ubuntu22.04)"),
    Case("image-ubuntu-interim", prod(("      webNodes: 2\n", "      webNodes: 2\n      image: linode/ubuntu25.04\n")),
         "woocommerce-dr:regions[0].image: not an allowed value; did you mean 'linode/ubuntu24.04'? (got "
         "'linode/ubuntu25.04'; allowed: linode/ubuntu24.04, linode/ubuntu22.04)"),
    Case("image-private", prod(("      webNodes: 2\n", "      webNodes: 2\n      image: private/12345\n")),
         "woocommerce-dr:regions[0].image: not an allowed value (got 'private/12345'; allowed: "
         "linode/ubuntu24.04, linode/ubuntu22.04)"),
    Case("replica-image-debian", prod(("    clusterSize: 3\n", "    clusterSize: 3\n    replicaImage: linode/debian12\n")),
         "woocommerce-dr:database.replicaImage: not an allowed value; did you mean 'linode/ubuntu24.04'? (got "
         "'linode/debian12'; allowed: "
         "linode/ubuntu24.04, linode/ubuntu22.04)"),

    # --- NodeBalancer -----------------------------------------------------------------------------
    Case("check-timeout-not-below-interval", prod(("    checkTimeout: 5\n", "    checkTimeout: 10\n")),
         "woocommerce-dr:nodeBalancer.checkTimeout: must be below checkInterval (10) (got 10; allowed: 1 to 9)"),
    Case("check-interval-1", prod(("    checkInterval: 10\n", "    checkInterval: 1\n"),
                                  ("    checkTimeout: 5\n", "    checkTimeout: 1\n")),
         "woocommerce-dr:nodeBalancer.checkInterval: out of range (got 1; allowed: 2 to 3600)"),
    Case("check-interval-3601", prod(("    checkInterval: 10\n", "    checkInterval: 3601\n")),
         "woocommerce-dr:nodeBalancer.checkInterval: out of range (got 3601; allowed: 2 to 3600)"),
    Case("check-timeout-31", prod(("    checkInterval: 10\n", "    checkInterval: 60\n"),
                                  ("    checkTimeout: 5\n", "    checkTimeout: 31\n")),
         "woocommerce-dr:nodeBalancer.checkTimeout: out of range (got 31; allowed: 1 to 30)"),
    Case("check-attempts-0", prod(("    checkAttempts: 3\n", "    checkAttempts: 0\n")),
         "woocommerce-dr:nodeBalancer.checkAttempts: out of range (got 0; allowed: 1 to 30)"),
    Case("check-attempts-true", prod(("    checkAttempts: 3\n", "    checkAttempts: true\n")),
         "woocommerce-dr:nodeBalancer.checkAttempts: not a whole number (got true; allowed: 1 to 30)"),
    Case("check-none", prod(("    check: connection\n", "    check: none\n")),
         "woocommerce-dr:nodeBalancer.check: not an allowed value (got 'none'; allowed: connection, http, http_body)"),
    Case("check-off", prod(("    check: connection\n", "    check: off\n")),
         "woocommerce-dr:nodeBalancer.check: not an allowed value (got 'off'; allowed: connection, http, http_body)"),
    Case("check-tcp", prod(("    check: connection\n", "    check: tcp\n")),
         "woocommerce-dr:nodeBalancer.check: not an allowed value (got 'tcp'; allowed: connection, http, http_body)"),
    Case("algorithm-misspelled", prod(("    algorithm: roundrobin\n", "    algorithm: round-robin\n")),
         "woocommerce-dr:nodeBalancer.algorithm: not an allowed value; did you mean 'roundrobin'? (got "
         "'round-robin'; allowed: roundrobin, leastconn, source)"),
    Case("check-path-relative", prod(("    checkAttempts: 3\n", "    checkAttempts: 3\n    checkPath: healthz\n")),
         "woocommerce-dr:nodeBalancer.checkPath: malformed value (got 'healthz'; allowed: a path starting with /)"),
    Case("node-balancer-misspelled", prod(("  woocommerce-dr:nodeBalancer:\n", "  woocommerce-dr:nodebalancer:\n")),
         "woocommerce-dr:nodebalancer: unknown key; did you mean 'nodeBalancer'? (got 'nodebalancer'; allowed: "
         "domain, regions, nodeBalancer, database, traffic, access, objectives, media, backups, automation, "
         "guardLinodeToken, guardCloudflareToken)"),

    # --- database ---------------------------------------------------------------------------------
    Case("database-mode-manual", prod(("    mode: managed\n", "    mode: manual\n")),
         "woocommerce-dr:database.mode: not an allowed value; did you mean 'managed'? (got 'manual'; allowed: "
         "managed, self-managed)"),
    Case("cluster-size-5", prod(("    clusterSize: 3\n", "    clusterSize: 5\n")),
         "woocommerce-dr:database.clusterSize: not an allowed value (got 5; allowed: 1, 2, 3)"),
    Case("cluster-size-true", prod(("    clusterSize: 3\n", "    clusterSize: true\n")),
         "woocommerce-dr:database.clusterSize: not a whole number (got true; allowed: 1, 2, 3)"),
    Case("binlog-retention-an-hour", prod(("    clusterSize: 3\n", "    clusterSize: 3\n    binlogRetentionSeconds: 3600\n")),
         "woocommerce-dr:database.binlogRetentionSeconds: out of range (got 3600; allowed: 86400 to 2419200)"),
    Case("binlog-retention-managed-two-days", prod(("    clusterSize: 3\n",
                                                    "    clusterSize: 3\n    binlogRetentionSeconds: 172800\n")),
         "woocommerce-dr:database.binlogRetentionSeconds: a Linode managed database keeps binlogs at most 86400 s "
         "(got 172800; allowed: 86400 with mode managed; up to 2419200 with mode self-managed)"),
    Case("maintenance-day", prod(("    clusterSize: 3\n", "    clusterSize: 3\n    maintenanceDay: Sunday\n")),
         "woocommerce-dr:database.maintenanceDay: not an allowed value; did you mean 'sunday'? (got 'Sunday'; "
         "allowed: monday, tuesday, wednesday, thursday, friday, saturday, sunday)"),
    Case("maintenance-hour-24", prod(("    clusterSize: 3\n", "    clusterSize: 3\n    maintenanceHour: 24\n")),
         "woocommerce-dr:database.maintenanceHour: out of range (got 24; allowed: 0 to 23)"),
    Case("replica-type-malformed", prod(("    replicaType: g6-standard-2\n", "    replicaType: big\n")),
         "woocommerce-dr:database.replicaType: malformed value (got 'big'; allowed: a Linode type id such as "
         "g6-standard-2)"),

    # --- traffic ----------------------------------------------------------------------------------
    Case("traffic-mode-dns", prod(("    mode: load-balancer\n", "    mode: dns\n")),
         "woocommerce-dr:traffic.mode: not an allowed value (got 'dns'; allowed: load-balancer, dns-failover)"),
    Case("dns-failover-without-watchdog", prod(DNS_MODE),
         "woocommerce-dr:access.watchdogCidrs: required with traffic.mode dns-failover: drctl watch probes each "
         "region's NodeBalancer from these networks, and without them the firewalls drop every probe, so the "
         "watchdog could only ever see every region down (got []; allowed: the networks drctl watch runs in, such "
         "as ['203.0.113.7/32'] (or automation.promote automatic, whose guard Linodes run "
         "drctl watch))"),
    Case("dns-failover-without-access", prod(DNS_MODE, ("  woocommerce-dr:access:\n    adminCidrs: []\n    sshKeys: "
                                                        "[]\n    watchdogCidrs: []  # drctl watch's address, in "
                                                        "dns-failover mode\n", "")),
         "woocommerce-dr:access.watchdogCidrs: required with traffic.mode dns-failover: "),
    Case("account-id-malformed", prod(('    accountId: "00000000000000000000000000000000"\n', "    accountId: my-account\n")),
         "woocommerce-dr:traffic.accountId: malformed value (got 'my-account'; allowed: a 32-character hexadecimal "
         "Cloudflare id)"),
    Case("zone-id-missing", prod(('    zoneId: "00000000000000000000000000000000"\n', "")),
         "woocommerce-dr:traffic.zoneId: required key is missing (got nothing; allowed: a 32-character hexadecimal "
         "Cloudflare id)"),
    Case("zone-id-a-number", prod(('    zoneId: "00000000000000000000000000000000"\n', "    zoneId: 0\n")),
         "woocommerce-dr:traffic.zoneId: not a string (got 0; allowed: a 32-character hexadecimal Cloudflare id)"),
    Case("monitor-interval-5", prod(monitor("interval: 60", "interval: 5"), monitor("timeout: 5", "timeout: 2")),
         "woocommerce-dr:traffic.monitor.interval: out of range (got 5; allowed: 10 to 3600)"),
    Case("monitor-interval-3601", prod(monitor("interval: 60", "interval: 3601")),
         "woocommerce-dr:traffic.monitor.interval: out of range (got 3601; allowed: 10 to 3600)"),
    Case("monitor-timeout-not-below-interval", prod(monitor("interval: 60", "interval: 10"),
                                                    monitor("timeout: 5", "timeout: 10")),
         "woocommerce-dr:traffic.monitor.timeout: must be below interval (10) (got 10; allowed: 1 to 9)"),
    Case("monitor-timeout-11", prod(monitor("timeout: 5", "timeout: 11")),
         "woocommerce-dr:traffic.monitor.timeout: out of range (got 11; allowed: 1 to 10)"),
    Case("monitor-retries-6", prod(monitor("retries: 2", "retries: 6")),
         "woocommerce-dr:traffic.monitor.retries: out of range (got 6; allowed: 0 to 5)"),
    Case("monitor-retries-false", prod(monitor("retries: 2", "retries: false")),
         "woocommerce-dr:traffic.monitor.retries: not a whole number (got false; allowed: 0 to 5)"),
    Case("monitor-consecutive-down-11", prod(monitor("consecutiveDown: 2", "consecutiveDown: 11")),
         "woocommerce-dr:traffic.monitor.consecutiveDown: out of range (got 11; allowed: 0 to 10)"),
    Case("monitor-path-relative", prod(monitor("path: /healthz", "path: healthz")),
         "woocommerce-dr:traffic.monitor.path: malformed value (got 'healthz'; allowed: a path starting with /)"),
    Case("expected-codes-unquoted", prod(monitor('expectedCodes: "200"', "expectedCodes: 200")),
         "woocommerce-dr:traffic.monitor.expectedCodes: not a string (got 200; allowed: an HTTP status code or "
         'class, quoted, such as "200" or "2xx")'),
    Case("expected-codes-600", prod(monitor('expectedCodes: "200"', 'expectedCodes: "600"')),
         "woocommerce-dr:traffic.monitor.expectedCodes: malformed value (got '600'; allowed: an HTTP status code "),
    Case("check-regions-unknown", prod(monitor('expectedCodes: "200"', 'expectedCodes: "200"\n    checkRegions: [MARS]')),
         "woocommerce-dr:traffic.checkRegions[0]: not an allowed value (got 'MARS'; allowed: WNAM, "),
    Case("session-affinity", prod(('    zoneId: "00000000000000000000000000000000"\n',
                                   '    zoneId: "00000000000000000000000000000000"\n    sessionAffinity: sticky\n')),
         "woocommerce-dr:traffic.sessionAffinity: not an allowed value (got 'sticky'; allowed: none, cookie, "
         "ip_cookie, header)"),
    Case("alerts-email", prod(('    zoneId: "00000000000000000000000000000000"\n',
                               '    zoneId: "00000000000000000000000000000000"\n    alerts: {email: ops}\n')),
         "woocommerce-dr:traffic.alerts.email: malformed value (got 'ops'; allowed: an email address)"),
    Case("alerts-webhook-http", prod(('    zoneId: "00000000000000000000000000000000"\n',
                                      '    zoneId: "00000000000000000000000000000000"\n'
                                      '    alerts: {webhookUrl: "http://hooks.example.com/x"}\n')),
         "woocommerce-dr:traffic.alerts.webhookUrl: malformed value (got 'http://hooks.example.com/x'; allowed: an "
         "https:// URL)"),
    Case("traffic-missing", without("traffic"),
         "woocommerce-dr:traffic: required key is missing (got nothing; allowed: a mapping with keys mode, accountId, "
         "zoneId, monitor, checkRegions, sessionAffinity, alerts, fallbackPage)"),

    # --- the fallback page from an HTML file ------------------------------------------------------
    Case("html-file-missing", page("htmlFile: docs/no-such-page.html"),
         "woocommerce-dr:traffic.fallbackPage.htmlFile: no such file in the project directory "
         f"{REPO_ROOT.resolve()} (got 'docs/no-such-page.html'; allowed: {PAGE_FILE})"),
    Case("html-file-absolute", page("htmlFile: /etc/hostname"),
         "woocommerce-dr:traffic.fallbackPage.htmlFile: not a relative path: name the file relative to the project "
         f"directory (got '/etc/hostname'; allowed: {PAGE_FILE})"),
    Case("html-file-outside-the-project", page("htmlFile: ../outside.html"),
         "woocommerce-dr:traffic.fallbackPage.htmlFile: resolves outside the project directory "
         f"{REPO_ROOT.resolve()} (got '../outside.html'; "),
    Case("html-file-sneaks-out", page("htmlFile: docs/../../outside.html"),
         "woocommerce-dr:traffic.fallbackPage.htmlFile: resolves outside the project directory "),
    Case("html-file-a-directory", page("htmlFile: docs"),
         "woocommerce-dr:traffic.fallbackPage.htmlFile: not a regular file (got 'docs'; "),
    Case("html-file-markdown", page("htmlFile: README.md"),
         "woocommerce-dr:traffic.fallbackPage.htmlFile: not well-formed HTML: line "),
    Case("html-file-stray-end-tag", page(f"htmlFile: {PAGES}/unclosed.html"),
         "woocommerce-dr:traffic.fallbackPage.htmlFile: not well-formed HTML: line 6, column 33: Unexpected end tag "
         f"(span). Ignored. (got '{PAGES}/unclosed.html'; "),
    Case("html-file-latin-1", page(f"htmlFile: {PAGES}/latin-1.html"),
         "woocommerce-dr:traffic.fallbackPage.htmlFile: not UTF-8 text: byte 0xe9 on line 3 (got "),
    Case("html-file-no-title", page(f"htmlFile: {PAGES}/no-title.html"),
         "woocommerce-dr:traffic.fallbackPage.htmlFile: no <title> (or an empty one) in its <head>: browser tabs "
         "and the drill report tell the page by it (got "),
    Case("html-file-and-title", page("htmlFile: docs/fallback-page.example.html", "title: Closed"),
         "woocommerce-dr:traffic.fallbackPage.htmlFile: cannot be combined with title: the file is the whole page, "
         "so title would be ignored (got 'docs/fallback-page.example.html'; allowed: either htmlFile, or title and "
         "message (remove title or htmlFile))"),
    Case("html-file-and-message", page("htmlFile: docs/fallback-page.example.html", "message: Back soon"),
         "woocommerce-dr:traffic.fallbackPage.htmlFile: cannot be combined with message: "),
    Case("html-file-empty", page('htmlFile: ""'),
         "woocommerce-dr:traffic.fallbackPage.htmlFile: must not be empty (got ''; allowed: a path relative to "),
    Case("html-file-a-list", page("htmlFile: [a.html, b.html]"),
         "woocommerce-dr:traffic.fallbackPage.htmlFile: not a string (got [\"a.html\", \"b.html\"]; "),

    # --- objectives -------------------------------------------------------------------------------
    Case("detection-slower-than-rto", prod(("    rtoSeconds: 300\n", "    rtoSeconds: 120\n")),
         "woocommerce-dr:traffic.monitor: worst-case failover detection takes 135 s but objectives.rtoSeconds is "
         "120 s: lower traffic.monitor.interval, consecutiveDown, timeout or retries, or raise objectives.rtoSeconds "
         "(got 'interval 60 x max(1, consecutiveDown 2) + timeout 5 x (retries 2 + 1) = 135 s'; allowed: at most "
         "120 s)"),
    Case("rto-10", prod(("    rtoSeconds: 300\n", "    rtoSeconds: 10\n")),
         "woocommerce-dr:objectives.rtoSeconds: out of range (got 10; allowed: 30 to 86400)"),
    Case("rpo-negative", prod(("    rpoSeconds: 15\n", "    rpoSeconds: -1\n")),
         "woocommerce-dr:objectives.rpoSeconds: out of range (got -1; allowed: 0 to 86400)"),
    Case("rpo-inf", prod(("    rpoSeconds: 15\n", "    rpoSeconds: .inf\n")),
         "woocommerce-dr:objectives.rpoSeconds: not a whole number (got Infinity; allowed: 0 to 86400)"),
    Case("backups-region-the-primary", add("  woocommerce-dr:backups:\n    region: us-east\n"),
         "woocommerce-dr:backups.region: the primary's region: the archive must survive losing it (got 'us-east'; "
         "allowed: one of the DR regions: "),
    Case("backups-region-not-in-the-stack", add("  woocommerce-dr:backups:\n    region: ap-south\n"),
         "woocommerce-dr:backups.region: not one of the stack's regions (got 'ap-south'; allowed: one of the DR regions: "),
    Case("backups-region-the-first-failover-target", prod(
        ("    - region: eu-west\n      webNodes: 2\n      instanceType: g6-standard-2\n",
         "    - region: eu-west\n      webNodes: 2\n      instanceType: g6-standard-2\n    - region: ap-south\n"))
         + "  woocommerce-dr:backups:\n    region: eu-west\n",
         "woocommerce-dr:backups.region: the region a failover promotes first (the next in regions): after one "
         "failover the archive would share the new primary's region (got 'eu-west'; allowed: one of the DR regions "
         "after the first: ap-south)"),
    Case("backups-base-every-zero-hours", add("  woocommerce-dr:backups:\n    baseEveryHours: 0\n"),
         "woocommerce-dr:backups.baseEveryHours: "),
    Case("backups-retention-a-string", add("  woocommerce-dr:backups:\n    retentionDays: fortnight\n"),
         "woocommerce-dr:backups.retentionDays: "),
    Case("backups-enabled-maybe", add("  woocommerce-dr:backups:\n    enabled: maybe\n"),
         "woocommerce-dr:backups.enabled: "),
    Case("backups-unknown-key", add("  woocommerce-dr:backups:\n    rpoSeconds: 60\n"),
         "woocommerce-dr:backups.rpoSeconds: unknown key"),
    Case("objectives-backup-rpo-too-small", prod(("    rpoSeconds: 15\n", "    rpoSeconds: 15\n    backupRpoSeconds: 5\n")),
         "woocommerce-dr:objectives.backupRpoSeconds: "),
    Case("objectives-a-string", prod(("  woocommerce-dr:objectives:\n    rtoSeconds: 300\n    rpoSeconds: 15\n",
                                      "  woocommerce-dr:objectives: fast\n")),
         "woocommerce-dr:objectives: not a mapping of keys (got 'fast'; allowed: a mapping with keys rtoSeconds, "
         "rpoSeconds, mediaRpoSeconds, backupRpoSeconds)"),
    Case("media-rpo-too-small", prod(("    rpoSeconds: 15\n", "    rpoSeconds: 15\n    mediaRpoSeconds: 5\n")),
         "woocommerce-dr:objectives.mediaRpoSeconds: out of range (got 5; allowed: 20 to 86400)"),
    Case("media-rpo-a-string", prod(("    rpoSeconds: 15\n", "    rpoSeconds: 15\n    mediaRpoSeconds: soon\n")),
         "woocommerce-dr:objectives.mediaRpoSeconds: not a whole number (got 'soon'; allowed: 20 to 86400)"),
    Case("max-upload-zero", prod(("  woocommerce-dr:objectives:\n",
                                  "  woocommerce-dr:media:\n    maxUploadMegabytes: 0\n  woocommerce-dr:objectives:\n")),
         "woocommerce-dr:media.maxUploadMegabytes: out of range (got 0; allowed: 1 to 1024)"),
    Case("media-key-misspelled", prod(("  woocommerce-dr:objectives:\n",
                                       "  woocommerce-dr:media:\n    maxUploadMB: 10\n  woocommerce-dr:objectives:\n")),
         "woocommerce-dr:media.maxUploadMB: unknown key; did you mean 'maxUploadMegabytes'? (got 'maxUploadMB'; "
         "allowed: maxUploadMegabytes, atticRetentionDays)"),
    Case("attic-retention-a-day", prod(("  woocommerce-dr:objectives:\n",
                                        "  woocommerce-dr:media:\n    atticRetentionDays: 1\n  woocommerce-dr:objectives:\n")),
         "woocommerce-dr:media.atticRetentionDays: out of range (got 1; allowed: 7 to 3650)"),
    Case("attic-retention-forever", prod(("  woocommerce-dr:objectives:\n",
                                          "  woocommerce-dr:media:\n    atticRetentionDays: forever\n"
                                          "  woocommerce-dr:objectives:\n")),
         "woocommerce-dr:media.atticRetentionDays: not a whole number (got 'forever'; allowed: 7 to 3650)"),
    Case("attic-retention-misspelled", prod(("  woocommerce-dr:objectives:\n",
                                             "  woocommerce-dr:media:\n    atticRetention: 30\n"
                                             "  woocommerce-dr:objectives:\n")),
         "woocommerce-dr:media.atticRetention: unknown key; did you mean 'atticRetentionDays'? (got "
         "'atticRetention'; allowed: maxUploadMegabytes, atticRetentionDays)"),

    # --- access: CIDRs and keys -------------------------------------------------------------------
    Case("admin-cidrs-everyone", prod(("    adminCidrs: []\n", "    adminCidrs: [0.0.0.0/0]\n")),
         f"woocommerce-dr:access.adminCidrs[0]: would open SSH to the whole internet (got '0.0.0.0/0'; allowed: "
         f"{CIDR_ONLY})"),
    Case("admin-cidrs-everyone-ipv6", prod(("    adminCidrs: []\n", '    adminCidrs: ["::/0"]\n')),
         "woocommerce-dr:access.adminCidrs[0]: would open SSH to the whole internet (got '::/0'; "),
    Case("admin-cidrs-two-halves", prod(("    adminCidrs: []\n", "    adminCidrs: [0.0.0.0/1, 128.0.0.0/1]\n")),
         "woocommerce-dr:access.adminCidrs: together these networks cover as much as a /0 of IPv4 (4,294,967,296 "
         "addresses, overlaps merged): that would open SSH to a large share of the internet (got [\"0.0.0.0/1\", "
         f'"128.0.0.0/1"]; allowed: {BUDGET})'),
    Case("watchdog-cidrs-two-halves", prod(("    watchdogCidrs: []", "    watchdogCidrs: [0.0.0.0/1, 128.0.0.0/1]")),
         "woocommerce-dr:access.watchdogCidrs: together these networks cover as much as a /0 of IPv4 (4,294,967,296 "
         "addresses, overlaps merged): that would open the NodeBalancers (the origins), around Cloudflare, to a "
         f'large share of the internet (got ["0.0.0.0/1", "128.0.0.0/1"]; allowed: {BUDGET})'),
    Case("admin-cidrs-eight-slash-4s", prod(("    adminCidrs: []\n", "    adminCidrs: [" + ", ".join(
        f"{16 * i}.0.0.0/4" for i in range(8)) + "]\n")),
         "woocommerce-dr:access.adminCidrs: together these networks cover as much as a /1 of IPv4 (2,147,483,648 "),
    Case("admin-cidrs-ipv6-two-slash-32s", prod(("    adminCidrs: []\n", '    adminCidrs: ["2001:db8::/32", '
                                                 '"2001:db9::/32"]\n')),
         "woocommerce-dr:access.adminCidrs: together these networks cover as much as a /31 of IPv6 "),
    Case("admin-cidrs-host-bits", prod(("    adminCidrs: []\n", "    adminCidrs: [10.0.0.1/24]\n")),
         "woocommerce-dr:access.adminCidrs[0]: not a valid CIDR (10.0.0.1/24 has host bits set) (got '10.0.0.1/24'; "
         f"allowed: {CIDR_ONLY})"),
    Case("admin-cidrs-not-a-cidr", prod(("    adminCidrs: []\n", "    adminCidrs: [office]\n")),
         "woocommerce-dr:access.adminCidrs[0]: not a valid CIDR ('office' does not appear to be an IPv4 or IPv6 "
         "network) (got 'office'; "),
    Case("admin-cidrs-a-string", prod(("    adminCidrs: []\n", "    adminCidrs: 203.0.113.0/24\n")),
         "woocommerce-dr:access.adminCidrs: not a list (got '203.0.113.0/24'; allowed: a list of strings)"),
    Case("admin-cidrs-too-many", prod(("    adminCidrs: []\n", "    adminCidrs: [" + ", ".join(
        f"10.0.{i}.0/24" for i in range(254)) + "]\n")),
         "woocommerce-dr:access.adminCidrs: too many networks: each database server's Cloud Firewall also admits "
         "its region's web nodes, the other database servers, the guards and access.operatorCidrs, and "
         "holds at most 255 addresses (got '254 "
         "networks'; allowed: at most 253 with these regions, webNodes, guards and operatorCidrs)"),
    Case("watchdog-cidrs-everyone", prod(("    watchdogCidrs: []", "    watchdogCidrs: [0.0.0.0/0]")),
         "woocommerce-dr:access.watchdogCidrs[0]: would open the NodeBalancers to the whole internet, around "
         "Cloudflare (got '0.0.0.0/0'; "),
    Case("ssh-key-private", prod(("    sshKeys: []\n", '    sshKeys: ["-----BEGIN OPENSSH PRIVATE KEY-----\\nb3Bl"]\n')),
         "woocommerce-dr:access.sshKeys[0]: is a private key; use the public key (the .pub file) (got '(not shown)'; "
         "allowed: a line such as 'ssh-ed25519 AAAA... you@laptop')"),
    Case("ssh-key-dss", prod(("    sshKeys: []\n", '    sshKeys: ["ssh-dss AAAAB3 old@box"]\n')),
         "woocommerce-dr:access.sshKeys[0]: not an OpenSSH public key (got 'ssh-dss'; allowed: a line such as "),
    Case("access-a-list", prod(("  woocommerce-dr:access:\n    adminCidrs: []\n    sshKeys: []\n    watchdogCidrs: "
                                "[]  # drctl watch's address, in dns-failover mode\n",
                                "  woocommerce-dr:access: [203.0.113.0/24]\n")),
         'woocommerce-dr:access: not a mapping of keys (got ["203.0.113.0/24"]; allowed: a mapping with keys '
         "adminCidrs, sshKeys, watchdogCidrs, operatorCidrs)"),

    # --- domain -----------------------------------------------------------------------------------
    Case("domain-one-label", prod(("shop.example.com", "shop")),
         "woocommerce-dr:domain: not a fully qualified domain name (got 'shop'; allowed: lower-case labels of a-z, "
         "0-9 and '-', separated by dots, such as shop.example.com)"),
    Case("domain-upper-case", prod(("shop.example.com", "Shop.Example.com")),
         "woocommerce-dr:domain: not a fully qualified domain name (got 'Shop.Example.com'; "),
    Case("domain-an-ip", prod(("shop.example.com", "10.0.0.1")),
         "woocommerce-dr:domain: not a fully qualified domain name (got '10.0.0.1'; "),
    Case("domain-missing", prod(("  woocommerce-dr:domain: shop.example.com\n", "")),
         "woocommerce-dr:domain: required key is missing (got nothing; allowed: the shop's fully qualified domain "
         "name, such as shop.example.com)"),
    Case("domain-too-long-for-database-names", prod(("shop.example.com", ".".join(["a" * 60] * 3 + ["b" * 42,
                                                                                                  "example.com"]))),
         "woocommerce-dr:domain: too long: the database server name mysql-us-east.db.<domain> would be 254 "
         "characters, over DNS's 253 (got "),
    Case("domain-a-list", prod(("  woocommerce-dr:domain: shop.example.com\n",
                                "  woocommerce-dr:domain: [shop.example.com]\n")),
         "woocommerce-dr:domain: not a string (got [\"shop.example.com\"]; allowed: the shop's fully qualified domain "
         "name, such as shop.example.com)"),
    # --- automation: guards, drctl's source, the guards' tokens, the automatic RTO budget ----------
    Case("guard-in-a-shop-region", automatic(("guards: [us-central, eu-central]", "guards: [us-east, eu-central]")),
         "woocommerce-dr:automation.guards[0]: 'us-east' is a shop region: a guard there goes dark with the primary "
         "it watches, or sees it alive from inside a partition the rest of the world cannot reach (got 'us-east'; "
         "allowed: a Linode region other than us-east, eu-west)"),
    Case("one-guard", automatic(("guards: [us-central, eu-central]", "guards: [us-central]")),
         "woocommerce-dr:automation.guards: automation.promote automatic needs at least 2 guard regions: a lone "
         "guard is one vantage point, and a vantage point cut off from the primary must never promote "
         "(got [\"us-central\"]; allowed: 2 to 5 Linode regions that are not shop regions; 3 tolerate one guard lost)"),
    Case("guard-image-debian", automatic(("guards: [us-central, eu-central]",
                                          "guards: [us-central, eu-central]\n    guardImage: linode/debian12")),
         "woocommerce-dr:automation.guardImage: not an allowed value; did you mean 'linode/ubuntu24.04'? (got "
         "'linode/debian12'; allowed: linode/ubuntu24.04, linode/ubuntu22.04)"),
    Case("guard-twice", automatic(("guards: [us-central, eu-central]", "guards: [us-central, us-central]")),
         "woocommerce-dr:automation.guards[1]: 'us-central' is listed twice"),
    Case("guard-not-a-region", automatic(("guards: [us-central, eu-central]", "guards: [us-central, eu-centrl]")),
         "woocommerce-dr:automation.guards[1]: 'eu-centrl' is not a Linode region; did you mean 'eu-central'?"),
    Case("promote-misspelt", automatic(("promote: automatic", "promote: automatc")),
         "woocommerce-dr:automation.promote: not an allowed value; did you mean 'automatic'? (got 'automatc'; "
         "allowed: manual, automatic)"),
    Case("automatic-failover-slower-than-rto", automatic(("confirmSeconds: 60", "confirmSeconds: 120")),
         "woocommerce-dr:automation.confirmSeconds: automatic failover takes up to 355 s but objectives.rtoSeconds "
         "is 300 s: lower automation.confirmSeconds or traffic.monitor.interval, consecutiveDown, fastInterval, "
         "timeout (or retries, in load-balancer mode), or raise objectives.rtoSeconds (got 'detection 135 s (the "
         "slower of drctl guard, 70 s, and Cloudflare, 135 s) + next guard cycles 2 x fastInterval 10 s + "
         "confirmSeconds 120 s + promotion 90 s = 355 s'; "
         "allowed: at most 300 s)"),
    Case("confirm-seconds-too-short", automatic(("confirmSeconds: 60", "confirmSeconds: 5")),
         "woocommerce-dr:automation.confirmSeconds: out of range (got 5; allowed: 10 to 3600)"),
    Case("automatic-without-drctl-source", automatic(
        ("    drctlSource:\n      repo: https://github.com/example/woocommerce-dr.git\n"
         f"      commit: \"{COMMIT}\"\n", "")),
         "woocommerce-dr:automation.drctlSource: required with automation.promote automatic"),
    Case("drctl-source-a-tag", automatic((f"commit: \"{COMMIT}\"", "commit: v1.2.0")),
         "woocommerce-dr:automation.drctlSource.commit: malformed value (got 'v1.2.0'; allowed: a full 40-character "
         "commit id (lower-case hex): a tag or branch can move)"),
    Case("drctl-source-with-credentials", automatic(
        ("repo: https://github.com/example/woocommerce-dr.git", "repo: https://bot:hunter2@github.com/example/x.git")),
         "woocommerce-dr:automation.drctlSource.repo: malformed value (got '(not shown)'; allowed: an https:// git "
         "URL without credentials"),
    Case("automatic-without-guard-token", automatic(
        ("  woocommerce-dr:guardLinodeToken:\n    secure: v1:placeholder\n", "")),
         "woocommerce-dr:guardLinodeToken: required with automation.promote automatic"),
    Case("plain-guard-token", automatic(
        ("  woocommerce-dr:guardCloudflareToken:\n    secure: v1:placeholder\n",
         "  woocommerce-dr:guardCloudflareToken: AbCdEf0123456789AbCdEf0123456789AbCdEf01\n")),
         "woocommerce-dr:guardCloudflareToken: a credential in plain text (got '(not shown)'; allowed: a secure: value"),
    Case("automatic-webhook-with-a-space", automatic(
        ('      expectedCodes: "200"\n', '      expectedCodes: "200"\n    alerts:\n      webhookUrl: "https://hooks.example.com/a b"\n')),
         "woocommerce-dr:traffic.alerts.webhookUrl: holds characters a URL does not (spaces, quotes, backslashes): "
         "the guards pass it to drctl guard --alert-webhook and the binlog archiver passes it to drctl archive "
         "--alert-webhook (got 'https://hooks.example.com/a b'"),
    Case("archiver-webhook-with-a-semicolon", prod(
        ('      expectedCodes: "200"\n', '      expectedCodes: "200"\n    alerts:\n      webhookUrl: "https://hooks.example.com/a;b"\n')),
         "woocommerce-dr:traffic.alerts.webhookUrl: holds characters a URL does not (spaces, quotes, backslashes): "
         "the binlog archiver passes it to drctl archive --alert-webhook (got 'https://hooks.example.com/a;b'; "
         "allowed: an https:// URL with percent-encoded special characters (no ! or ;))"),
    Case("backups-without-drctl-source", without("automation"),
         "woocommerce-dr:automation.drctlSource: required with backups.enabled: the DR replica in backups.region "
         "installs drctl from this repository at this commit to run the binlog archiver (drctl archive) (got nothing; "
         "allowed: a mapping with keys repo (https git URL) and commit (40-character commit id), or backups.enabled "
         "false)"),
    Case("operator-cidr-not-a-network", prod(("    watchdogCidrs: []", "    operatorCidrs: [10.0.0.300/32]\n    watchdogCidrs: []")),
         "woocommerce-dr:access.operatorCidrs[0]: not a valid CIDR"),
    Case("operator-cidrs-everyone", prod(("    watchdogCidrs: []", "    operatorCidrs: [0.0.0.0/0]\n    watchdogCidrs: []")),
         f"woocommerce-dr:access.operatorCidrs[0]: would open MySQL and the NodeBalancers to the whole internet "
         f"(got '0.0.0.0/0'; allowed: {CIDR_ONLY})"),
    Case("fast-interval-not-below-interval", prod(monitor("expectedCodes: \"200\"", "expectedCodes: \"200\"\n      fastInterval: 60")),
         "woocommerce-dr:traffic.monitor.fastInterval: must be at least timeout (5) and below interval (60) "
         "(got 60; allowed: 5 to 59)"),
]


def test_the_corpus_is_large_and_every_case_is_named_once():
    names = [c.name for c in CASES]
    assert len(names) >= 80 and len(set(names)) == len(names)


def write(tmp_path: Path, case: Case) -> Path:
    path = tmp_path / "x.yaml"
    path.write_bytes(case.text if isinstance(case.text, bytes) else case.text.encode("utf-8"))
    return path


def assert_refused(code: int, out: str, err: str, case: Case) -> None:
    assert code == 2, err
    assert out == ""
    assert "Traceback" not in err and "Error:" not in err.split("\n", 1)[0].removeprefix("drctl plan:"), err
    lines = [line.removeprefix("drctl plan: ") for line in err.splitlines() if "(got " in line]
    assert len(lines) == 1, f"expected one problem line, got:\n{err}"
    assert case.line in lines[0], f"\n{lines[0]}\ndoes not contain\n{case.line}"
    assert "; allowed: " in lines[0] and lines[0].endswith(")")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_bad_stack_file_is_refused_with_one_line(case, tmp_path, capsys):
    code = main(["plan", "-s", "prod", "--stack-file", str(write(tmp_path, case))])
    out, err = capsys.readouterr()
    assert_refused(code, out, err, case)


# A few through the command line a user types: the file, the program and the exit code for real.
COMMAND_LINE = ["top-level-list", "latin-1-byte", "alias-bomb", "duplicate-config-key", "plain-linode-token",
                "admin-cidrs-two-halves"]


@pytest.fixture(scope="module")
def command_line_runs(tmp_path_factory):
    """Every COMMAND_LINE case's `python -m drctl plan`, started together (each takes seconds to import
    the providers), as {name: (exit code, stdout, stderr)}."""
    by_name = {c.name: c for c in CASES}
    started = {}
    for name in COMMAND_LINE:
        path = write(tmp_path_factory.mktemp(name), by_name[name])
        started[name] = subprocess.Popen(
            [sys.executable, "-m", "drctl", "plan", "-s", "prod", "--stack-file", str(path)],
            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    runs = {}
    for name, proc in started.items():
        out, err = proc.communicate(timeout=120)
        runs[name] = (proc.returncode, out, err)
    return runs


@pytest.mark.parametrize("name", COMMAND_LINE)
def test_python_m_drctl_plan_refuses_it_too(name, command_line_runs):
    case = next(c for c in CASES if c.name == name)
    assert_refused(*command_line_runs[name], case)
