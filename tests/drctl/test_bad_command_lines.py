"""A corpus of bad command lines, one named case each, for every drctl command: each is refused with
exit 2, nothing on stdout, no traceback, and a last line on stderr that names the flag, what was
given and what is allowed. They run in-process through `drctl.cli.main` and fail before anything
is started: a case that connects, binds or starts a process fails the test.

Placeholders in argv and in the expected fragment: {lb} valid stack outputs (load-balancer mode,
us-east primary, eu-west and ap-south DR), {dns} valid outputs in dns-failover mode (us-east,
eu-west), {tmp} a scratch directory, {file} a plain file, and the bad outputs documents below.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
from pathlib import Path

import pytest

from drctl import cli
from tests.support import runbook_support, watch_shop

LB = ["--outputs", "{lb}"]
DNS = ["--outputs", "{dns}"]

CASES = [
    # -- any command ----------------------------------------------------------------------------
    ("unknown-command", ["failover"], "argument COMMAND: invalid choice: 'failover'"),
    ("flag-of-another-command", ["failback", *LB, "--to", "us-east", "--yes", "--region", "eu-west"],
     "unrecognized arguments: --region eu-west"),
    # -- plan -----------------------------------------------------------------------------------
    ("plan-without-stack", ["plan"], "the following arguments are required: -s/--stack"),
    ("plan-unknown-stack", ["plan", "-s", "prd"], "--stack: no stack file Pulumi.prd.yaml (got 'prd'; allowed: "),
    ("plan-missing-stack-file", ["plan", "-s", "dr-test", "--stack-file", "{tmp}/nope.yaml"],
     "--stack-file: no such file (got '{tmp}/nope.yaml'; allowed: the path of a stack file)"),
    ("plan-output-yaml", ["plan", "-s", "dr-test", "-o", "yaml"],
     "argument -o/--output: invalid choice: 'yaml' (choose from"),
    # -- restore ----------------------------------------------------------------------------------
    ("restore-without-a-target-moment", ["restore", *LB, "--dry-run"],
     "one of the arguments --to-time --to-gtid is required"),
    ("restore-time-not-a-time", ["restore", *LB, "--to-time", "yesterday", "--dry-run"],
     "argument --to-time: not a time (got 'yesterday'; allowed: an ISO 8601 time such as 2026-11-29T14:03:00Z"),
    ("restore-gtid-malformed", ["restore", *LB, "--to-gtid", "3e11fa47-71ca:23", "--dry-run"],
     "argument --to-gtid: not a GTID (got '3e11fa47-71ca:23'; allowed: a MariaDB GTID domain-server-sequence such as "
     "0-1-48211, or a MySQL GTID server_uuid:number"),
    ("restore-gtid-a-range", ["restore", *LB, "--to-gtid", "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-23", "--dry-run"],
     "argument --to-gtid: not a GTID (got '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-23'"),
    ("restore-time-and-gtid", ["restore", *LB, "--to-time", "2026-11-29T14:03:00Z", "--to-gtid", "0-1-5"],
     "argument --to-gtid: not allowed with argument --to-time"),
    ("restore-target-unknown", ["restore", *LB, "--to-gtid", "0-1-5", "--target", "s3:bucket"],
     "argument --target: unknown target (got 's3:bucket'; allowed: local:DIR (a new or empty directory) or "
     "linode[:REGION])"),
    ("restore-target-linode-bad-region", ["restore", *LB, "--to-gtid", "0-1-5", "--target", "linode:Mars"],
     "argument --target: not a Linode region (got 'Mars'; allowed: a region id such as us-east or eu-west); "
     "allowed targets: local:DIR"),
    ("restore-target-linode-without-yes", ["restore", *LB, "--to-gtid", "0-1-5", "--target", "linode"],
     "--target linode creates a Linode, which costs money while it exists: pass --yes to create it, or --dry-run"),
    ("restore-scratch-type-not-a-type", ["restore", *LB, "--to-gtid", "0-1-5", "--target", "linode", "--yes",
                                         "--scratch-type", "huge"],
     "argument --scratch-type: not a Linode type (got 'huge'; allowed: a Linode plan id such as g6-standard-2)"),
    ("restore-allow-from-everyone", ["restore", *LB, "--to-gtid", "0-1-5", "--target", "linode", "--yes",
                                     "--allow-from", "0.0.0.0/0"],
     "argument --allow-from: too wide: /0 would open the restored data to a large part of the internet (got "
     "'0.0.0.0/0'; allowed: a prefix of at least /8)"),
    ("restore-allow-from-not-an-address", ["restore", *LB, "--to-gtid", "0-1-5", "--allow-from", "my-laptop"],
     "argument --allow-from: not an address or network (got 'my-laptop'; allowed: an IPv4 or IPv6 address"),
    ("restore-scratch-timeout-too-short", ["restore", *LB, "--to-gtid", "0-1-5", "--scratch-timeout", "5"],
     "argument --scratch-timeout: must be a number from 60 to 86400 s (got 5)"),
    ("restore-list-scratch-and-a-time", ["restore", *LB, "--list-scratch", "--to-gtid", "0-1-5"],
     "--list-scratch restores nothing: leave out --to-gtid"),
    ("restore-list-and-delete-scratch", ["restore", *LB, "--list-scratch", "--delete-scratch", "drctl-restore-x"],
     "argument --delete-scratch: not allowed with argument --list-scratch"),
    ("restore-delete-scratch-not-a-scratch", ["restore", *LB, "--delete-scratch", "shop-web-1", "--yes"],
     "--delete-scratch: not a scratch Linode's label (got 'shop-web-1'; allowed: a label starting drctl-restore-"),
    ("restore-delete-scratch-without-yes", ["restore", *LB, "--delete-scratch", "drctl-restore-prod-drill"],
     "--delete-scratch deletes Linode drctl-restore-prod-drill and what it holds: pass --yes"),
    ("restore-list-scratch-without-token", ["restore", *LB, "--list-scratch"],
     "LINODE_TOKEN is not set: export a Linode personal access token"),
    ("restore-target-not-empty", ["restore", *LB, "--to-gtid", "0-1-5", "--target", "local:{tmp}"],
     "argument --target: {tmp} exists and is not an empty directory"),
    ("restore-nowhere", ["restore", *LB, "--to-gtid", "0-1-5"],
     "give --target local:DIR or --target linode[:REGION] (where to restore), --tables with --export, or --dry-run"),
    ("restore-tables-without-export", ["restore", *LB, "--to-gtid", "0-1-5", "--tables", "wp_wc_orders"],
     "--tables needs --export FILE"),
    ("restore-tables-bad-name", ["restore", *LB, "--to-gtid", "0-1-5", "--tables", "wp_wc_orders;drop"],
     "argument --tables: not a table name: 'wp_wc_orders;drop'"),
    ("restore-export-exists", ["restore", *LB, "--to-gtid", "0-1-5", "--tables", "wp_wc_orders", "--export", "{file}"],
     "--export: {file} exists (allowed: a new file"),
    ("restore-stack-without-archive", ["restore", *LB, "--to-gtid", "0-1-5", "--dry-run"],
     "--outputs {lb}: stack 'runbook-test' has no binlog archive"),
    # -- archive ----------------------------------------------------------------------------------
    ("archive-without-config", ["archive"], "the following arguments are required: --config"),
    ("archive-config-missing", ["archive", "--config", "{tmp}/archive.json"],
     "argument --config: no such file (got {tmp}/archive.json; allowed: a readable file)"),
    ("archive-config-not-json", ["archive", "--config", "{file}"], "--config: not JSON, "),
    ("archive-config-without-bucket", ["archive", "--config", "{empty_object}"],
     "--config {empty_object}: bucket: Field required"),
    ("archive-alert-webhook-not-a-url", ["archive", "--config", "{empty_object}", "--alert-webhook", "ftp://x"],
     "argument --alert-webhook: must be an http:// or https:// URL (got 'ftp://x')"),
    ("archive-alert-command-missing", ["archive", "--config", "{empty_object}", "--alert-command", "no-such-pager"],
     "argument --alert-command: no executable 'no-such-pager'"),
    ("archive-alert-timeout-zero", ["archive", "--config", "{empty_object}", "--alert-timeout", "0"],
     "argument --alert-timeout: must be a number above 0 and at most 300 s (got 0)"),
    # -- status: where the stack outputs come from, and what they hold ----------------------------
    ("status-without-stack-or-outputs", ["status"], "give -s/--stack STACK or --outputs FILE"),
    ("status-stack-and-outputs", ["status", "-s", "prod", *LB], "argument --outputs: not allowed with argument -s/--stack"),
    ("status-outputs-missing", ["status", "--outputs", "{tmp}/missing.json"],
     "--outputs: cannot read it, no such file or directory (got {tmp}/missing.json; allowed: a file saved by"),
    ("status-outputs-is-a-directory", ["status", "--outputs", "{tmp}"],
     "--outputs: cannot read it, is a directory (got {tmp}; allowed: "),
    ("status-outputs-not-json", ["status", "--outputs", "{not_json}"],
     "--outputs: not JSON, Expecting value: line 1 column 1 (char 0) (got {not_json}; allowed: "),
    ("status-outputs-empty", ["status", "--outputs", "{empty}"], "--outputs: not JSON, Expecting value"),
    ("status-outputs-not-utf8", ["status", "--outputs", "{latin1}"], "--outputs: not JSON, 'utf-8' codec can't decode"),
    ("status-outputs-endless", ["status", "--outputs", "/dev/zero"], "--outputs: larger than 16 MiB (got /dev/zero; "),
    ("status-outputs-a-list", ["status", "--outputs", "{a_list}"],
     "--outputs {a_list}: drctl: Input should be a valid dictionary"),
    ("status-outputs-an-empty-object", ["status", "--outputs", "{empty_object}"],
     "--outputs {empty_object}: drctl.objectives: Field required"),
    ("status-outputs-without-monitor", ["status", "--outputs", "{no_monitor}"],
     "--outputs {no_monitor}: drctl.monitor: Field required"),
    ("status-outputs-unknown-traffic-mode", ["status", "--outputs", "{round_robin}"],
     "--outputs {round_robin}: drctl.trafficMode: Input should be 'load-balancer' or 'dns-failover' (got 'round-robin')"),
    ("status-outputs-one-region", ["status", "--outputs", "{one_region}"],
     "--outputs {one_region}: drctl.regions: Tuple should have at least 2 items after validation, not 1"),
    ("status-outputs-port-as-text", ["status", "--outputs", "{port_text}"],
     "--outputs {port_text}: drctl.database.primary.port: Input should be a valid integer"),
    ("status-output-yaml", ["status", *LB, "-o", "yaml"], "argument -o/--output: invalid choice: 'yaml'"),
    # -- promote --------------------------------------------------------------------------------
    ("promote-without-region", ["promote", *LB, "--yes"], "the following arguments are required: --region"),
    ("promote-without-yes", ["promote", *LB, "--region", "eu-west"],
     "promote changes which database takes writes: pass --yes to act, or --dry-run to see the steps"),
    ("promote-without-stack-or-outputs", ["promote", "--region", "eu-west", "--yes"], "give -s/--stack STACK or --outputs FILE"),
    ("promote-stack-and-outputs", ["promote", "-s", "prod", *LB, "--region", "eu-west", "--yes"],
     "argument --outputs: not allowed with argument -s/--stack"),
    ("promote-unknown-region", ["promote", *LB, "--region", "mars-1", "--dry-run"],
     "--region: no database server in region 'mars-1' of stack 'runbook-test' (got 'mars-1'; allowed: us-east, "
     "eu-west, ap-south)"),
    ("promote-outputs-not-json", ["promote", "--outputs", "{not_json}", "--region", "eu-west", "--yes"], "--outputs: not JSON"),
    ("promote-catch-up-timeout-nan", ["promote", *LB, "--region", "eu-west", "--yes", "--catch-up-timeout", "nan"],
     "argument --catch-up-timeout: must be a number above 0 and at most 86400 s (got nan)"),
    ("promote-catch-up-timeout-inf", ["promote", *LB, "--region", "eu-west", "--yes", "--catch-up-timeout", "inf"],
     "argument --catch-up-timeout: must be a number above 0 and at most 86400 s (got inf)"),
    ("promote-catch-up-timeout-negative", ["promote", *LB, "--region", "eu-west", "--yes", "--catch-up-timeout=-1"],
     "argument --catch-up-timeout: must be a number above 0 and at most 86400 s (got -1)"),
    ("promote-catch-up-timeout-zero", ["promote", *LB, "--region", "eu-west", "--yes", "--catch-up-timeout", "0"],
     "argument --catch-up-timeout: must be a number above 0 and at most 86400 s (got 0)"),
    ("promote-catch-up-timeout-huge", ["promote", *LB, "--region", "eu-west", "--yes", "--catch-up-timeout", "1e9"],
     "argument --catch-up-timeout: must be a number above 0 and at most 86400 s (got 1e9)"),
    ("promote-catch-up-timeout-words", ["promote", *LB, "--region", "eu-west", "--yes", "--catch-up-timeout", "5 min"],
     "argument --catch-up-timeout: must be a number above 0 and at most 86400 s (got '5 min')"),
    ("promote-traffic-timeout-zero", ["promote", *LB, "--region", "eu-west", "--yes", "--traffic-timeout", "0"],
     "argument --traffic-timeout: must be a number above 0 and at most 86400 s (got 0)"),
    ("promote-traffic-timeout-minus-inf", ["promote", *LB, "--region", "eu-west", "--yes", "--traffic-timeout=-inf"],
     "argument --traffic-timeout: must be a number above 0 and at most 86400 s (got -inf)"),
    ("promote-traffic-timeout-a-day-and-a-second", ["promote", *LB, "--region", "eu-west", "--yes",
                                                    "--traffic-timeout", "86401"],
     "argument --traffic-timeout: must be a number above 0 and at most 86400 s (got 86401)"),
    ("promote-apply-timeout-zero", ["promote", *LB, "--region", "eu-west", "--yes", "--apply-timeout", "0"],
     "argument --apply-timeout: must be a number above 0 and at most 86400 s (got 0)"),
    ("promote-apply-timeout-nan", ["promote", *LB, "--region", "eu-west", "--yes", "--apply-timeout", "NaN"],
     "argument --apply-timeout: must be a number above 0 and at most 86400 s (got NaN)"),
    ("promote-block-seconds-negative", ["promote", *LB, "--region", "eu-west", "--yes", "--block-seconds=-1"],
     "argument --block-seconds: must be an integer from 0 to 2592000 s (got -1)"),
    ("promote-block-seconds-fraction", ["promote", *LB, "--region", "eu-west", "--yes", "--block-seconds", "1.5"],
     "argument --block-seconds: must be an integer from 0 to 2592000 s (got 1.5)"),
    ("promote-block-seconds-over-30-days", ["promote", *LB, "--region", "eu-west", "--yes", "--block-seconds", "2592001"],
     "argument --block-seconds: must be an integer from 0 to 2592000 s (got 2592001)"),
    ("promote-pre-hook-missing-program", ["promote", *LB, "--region", "eu-west", "--yes", "--pre-hook", "{tmp}/page-oncall"],
     "argument --pre-hook: no executable '{tmp}/page-oncall' (got '{tmp}/page-oncall'; allowed: a program on PATH"),
    ("promote-pre-hook-empty", ["promote", *LB, "--region", "eu-west", "--yes", "--pre-hook", ""],
     "argument --pre-hook: empty command (got ''; allowed: PROGRAM [ARGS...])"),
    ("promote-post-hook-unbalanced-quote", ["promote", *LB, "--region", "eu-west", "--yes", "--post-hook", 'notify "done'],
     "argument --post-hook: cannot split into words: No closing quotation (got 'notify \"done'; allowed: "),
    ("promote-output-yaml", ["promote", *LB, "--region", "eu-west", "--yes", "-o", "yaml"],
     "argument -o/--output: invalid choice: 'yaml'"),
    ("promote-primary-last-seen-in-the-future", ["promote", *LB, "--region", "eu-west", "--yes",
                                                 "--primary-last-seen", "2999-01-01T00:00:00Z"],
     "argument --primary-last-seen: in the future, "),
    ("promote-primary-last-seen-future-says-allowed", ["promote", *LB, "--region", "eu-west", "--yes",
                                                        "--primary-last-seen", "2999-01-01T00:00:00+01:00"],
     "(got 2999-01-01T00:00:00+01:00; allowed: an ISO-8601 time with its time zone, not in the future, "
     "e.g. 2026-11-29T14:03:00Z)"),
    ("promote-primary-last-seen-no-zone", ["promote", *LB, "--region", "eu-west", "--yes",
                                           "--primary-last-seen", "2026-11-29T14:03:00"],
     "argument --primary-last-seen: no time zone (got 2026-11-29T14:03:00; allowed: an ISO-8601 time with its "
     "time zone"),
    ("promote-primary-last-seen-words", ["promote", *LB, "--region", "eu-west", "--yes",
                                         "--primary-last-seen", "5 min ago"],
     "argument --primary-last-seen: not a time (got '5 min ago'; allowed: an ISO-8601 time with its time zone"),
    ("promote-primary-last-seen-epoch", ["promote", *LB, "--region", "eu-west", "--yes",
                                         "--primary-last-seen", "1795960980"],
     "argument --primary-last-seen: not a time (got 1795960980; allowed: "),
    # -- failback -------------------------------------------------------------------------------
    ("failback-without-to", ["failback", *LB, "--yes"], "the following arguments are required: --to"),
    ("failback-without-yes", ["failback", *LB, "--to", "us-east"],
     "failback changes which database takes writes: pass --yes to act, or --dry-run to see the steps"),
    ("failback-unknown-to", ["failback", *LB, "--to", "mars-1", "--dry-run"],
     "--to: no database server in region 'mars-1' of stack 'runbook-test' (got 'mars-1'; allowed: us-east, "),
    ("failback-export-dir-is-a-file", ["failback", *LB, "--to", "us-east", "--yes", "--export-dir", "{file}"],
     "argument --export-dir: is a file (got {file}; allowed: a writable directory, or a new one in a writable directory)"),
    ("failback-export-dir-under-a-file", ["failback", *LB, "--to", "us-east", "--yes", "--export-dir", "{file}/errant"],
     "argument --export-dir: {file} is a file (got {file}/errant; allowed: a writable directory"),
    ("failback-catch-up-timeout-negative", ["failback", *LB, "--to", "us-east", "--yes", "--catch-up-timeout", "-5"],
     "argument --catch-up-timeout: must be a number above 0 and at most 86400 s (got -5)"),
    ("failback-traffic-timeout-infinite", ["failback", *LB, "--to", "us-east", "--yes", "--traffic-timeout", "Infinity"],
     "argument --traffic-timeout: must be a number above 0 and at most 86400 s (got Infinity)"),
    ("failback-pre-hook-missing-program", ["failback", *LB, "--to", "us-east", "--yes", "--pre-hook", "drain-queue-xyz --now"],
     "argument --pre-hook: no executable 'drain-queue-xyz' (got 'drain-queue-xyz --now'; "),
    # -- watch ----------------------------------------------------------------------------------
    ("watch-without-stack-or-outputs", ["watch"], "give -s/--stack STACK or --outputs FILE"),
    ("watch-stack-and-outputs", ["watch", "-s", "prod", *DNS], "argument --outputs: not allowed with argument -s/--stack"),
    ("watch-outputs-missing", ["watch", "--outputs", "{tmp}/missing.json"], "--outputs: cannot read it, no such file"),
    ("watch-load-balancer-stack", ["watch", *LB],
     "--outputs {lb}: stack 'runbook-test' uses traffic mode 'load-balancer' (allowed: 'dns-failover')"),
    ("watch-no-dns-records", ["watch", "--outputs", "{dns_no_records}"],
     "--outputs {dns_no_records}: stack 'watch-test': drctl.cloudflare.dnsRecordIds is empty"),
    ("watch-interval-nan", ["watch", *DNS, "--interval", "nan"],
     "argument --interval: must be a number above 0 and at most 3600 s (got nan)"),
    ("watch-interval-zero", ["watch", *DNS, "--interval", "0"],
     "argument --interval: must be a number above 0 and at most 3600 s (got 0)"),
    ("watch-interval-over-an-hour", ["watch", *DNS, "--interval", "3601"],
     "argument --interval: must be a number above 0 and at most 3600 s (got 3601)"),
    ("watch-timeout-negative", ["watch", *DNS, "--timeout=-2"],
     "argument --timeout: must be a number above 0 and at most 3600 s (got -2)"),
    ("watch-timeout-not-below-interval", ["watch", *DNS, "--interval", "2", "--timeout", "5"],
     "--timeout: must be below --interval 2 (got --timeout 5; allowed: above 0 and below the interval)"),
    ("watch-interval-below-the-stack-timeout", ["watch", *DNS, "--interval", "3"],
     "--timeout: must be below --interval 3 (got the stack's monitor timeout 5; allowed: "),
    ("watch-fast-interval-zero", ["watch", *DNS, "--fast-interval", "0"],
     "argument --fast-interval: must be a number above 0 and at most 3600 s (got 0)"),
    ("watch-fast-interval-above-the-interval", ["watch", *DNS, "--interval", "30", "--fast-interval", "40"],
     "--fast-interval: must be at most the interval 30 s (got 40; allowed: above 0, at most the interval)"),
    ("watch-fall-zero", ["watch", *DNS, "--fall", "0"], "argument --fall: must be an integer from 1 to 100 (got 0)"),
    ("watch-fall-fraction", ["watch", *DNS, "--fall", "2.5"], "argument --fall: must be an integer from 1 to 100 (got 2.5)"),
    ("watch-rise-over-100", ["watch", *DNS, "--rise", "101"], "argument --rise: must be an integer from 1 to 100 (got 101)"),
    ("watch-origin-port-zero", ["watch", *DNS, "--origin-port", "0"],
     "argument --origin-port: must be an integer from 1 to 65535 (got 0)"),
    ("watch-origin-port-too-high", ["watch", *DNS, "--origin-port", "65536"],
     "argument --origin-port: must be an integer from 1 to 65535 (got 65536)"),
    ("watch-origin-port-a-name", ["watch", *DNS, "--origin-port", "https"],
     "argument --origin-port: must be an integer from 1 to 65535 (got https)"),
    ("watch-metrics-port-negative", ["watch", *DNS, "--metrics-port=-1"],
     "argument --metrics-port: must be an integer from 0 to 65535 (got -1)"),
    ("watch-metrics-port-too-high", ["watch", *DNS, "--metrics-port", "70000"],
     "argument --metrics-port: must be an integer from 0 to 65535 (got 70000)"),
    ("watch-stability-window-negative", ["watch", *DNS, "--stability-window=-60"],
     "argument --stability-window: must be a number from 0 to 86400 s (got -60)"),
    ("watch-stability-window-inf", ["watch", *DNS, "--stability-window", "inf"],
     "argument --stability-window: must be a number from 0 to 86400 s (got inf)"),
    ("watch-lease-ttl-below-a-minute", ["watch", *DNS, "--lease-ttl", "59"],
     "argument --lease-ttl: must be a number from 60 to 86400 s (got 59)"),
    ("watch-lease-ttl-nan", ["watch", *DNS, "--lease-ttl", "nan"],
     "argument --lease-ttl: must be a number from 60 to 86400 s (got nan)"),
    ("watch-lease-ttl-below-four-intervals", ["watch", *DNS, "--interval", "60", "--lease-ttl", "100"],
     "--lease-ttl: must be at least 4 x the interval 60 s, 240 s, so the holder renews it in time (got 100; "
     "allowed: 240 to 86400)"),
    ("watch-lease-ttl-with-a-file-lease", ["watch", *DNS, "--lease", "file", "--lease-ttl", "120"],
     "--lease-ttl: applies to --lease cloudflare only (got 120 with --lease file)"),
    ("watch-lease-file-with-the-cloudflare-lease", ["watch", *DNS, "--lease-file", "{tmp}/watch.lock"],
     "--lease-file: applies to --lease file only (got {tmp}/watch.lock with --lease cloudflare)"),
    ("watch-lease-file-in-a-missing-directory", ["watch", *DNS, "--lease", "file", "--lease-file", "{tmp}/no/watch.lock"],
     "--lease-file: cannot open it, no such file or directory (got {tmp}/no/watch.lock; allowed: "),
    ("watch-lease-unknown", ["watch", *DNS, "--lease", "etcd"], "argument --lease: invalid choice: 'etcd'"),
    ("watch-record-refresh-zero", ["watch", *DNS, "--record-refresh", "0"],
     "argument --record-refresh: must be a number above 0 and at most 86400 s (got 0)"),
    ("watch-alert-timeout-zero", ["watch", *DNS, "--alert-timeout", "0"],
     "argument --alert-timeout: must be a number above 0 and at most 300 s (got 0)"),
    ("watch-alert-timeout-too-long", ["watch", *DNS, "--alert-timeout", "301"],
     "argument --alert-timeout: must be a number above 0 and at most 300 s (got 301)"),
    ("watch-alert-command-missing-program", ["watch", *DNS, "--alert-command", "page-oncall-xyz --team dr"],
     "argument --alert-command: no executable 'page-oncall-xyz' (got 'page-oncall-xyz --team dr'; "),
    ("watch-alert-webhook-not-http", ["watch", *DNS, "--alert-webhook", "ftp://example.test/hook"],
     "argument --alert-webhook: must be an http:// or https:// URL (got 'ftp://example.test/hook')"),
    ("watch-ca-file-missing", ["watch", *DNS, "--ca-file", "{tmp}/origin-ca.pem"],
     "argument --ca-file: no such file (got {tmp}/origin-ca.pem; allowed: a readable file)"),
    ("watch-ca-file-a-directory", ["watch", *DNS, "--ca-file", "{tmp}"],
     "argument --ca-file: is a directory (got {tmp}; allowed: a readable file)"),
    ("watch-expected-codes-words", ["watch", *DNS, "--expected-codes", "ok"],
     "--expected-codes: use codes like \"200\" or \"2xx\", separated by commas (got 'ok')"),
    ("watch-holder-id-with-spaces", ["watch", *DNS, "--holder-id", "two words"],
     "--holder-id: no spaces or quotes (got 'two words'; allowed: a name like HOST:PID)"),
    ("watch-once-with-auto-failback", ["watch", *DNS, "--once", "--auto-failback"],
     "--auto-failback needs a stability window watched over time: run the loop, not --once"),
    ("watch-output-yaml", ["watch", *DNS, "-o", "yaml"], "argument -o/--output: invalid choice: 'yaml'"),
    # -- guard ----------------------------------------------------------------------------------
    ("guard-without-stack-or-outputs", ["guard"], "give -s/--stack STACK or --outputs FILE"),
    ("guard-on-a-manual-stack", ["guard", *LB],
     "--outputs: stack 'runbook-test' has automation.promote 'manual': a person promotes (got automation.promote "
     "manual; allowed: automatic, or run with --dry-run to see what the guard would decide)"),
    ("guard-interval-zero", ["guard", *LB, "--dry-run", "--interval", "0"],
     "argument --interval: must be a number above 0 and at most 3600 s (got 0)"),
    ("guard-fast-interval-above-the-interval", ["guard", *LB, "--dry-run", "--interval", "30", "--fast-interval", "40"],
     "--fast-interval: must be at most the interval 30 s (got 40; allowed: above 0, at most the interval)"),
    ("guard-timeout-not-below-interval", ["guard", *LB, "--dry-run", "--interval", "5", "--timeout", "5"],
     "--timeout: must be below the interval 5 s (got 5; allowed: above 0 and below the interval)"),
    ("guard-confirm-seconds-negative", ["guard", *LB, "--dry-run", "--confirm-seconds=-1"],
     "argument --confirm-seconds: must be a number from 0 to 86400 s (got -1)"),
    ("guard-block-seconds-fraction", ["guard", *LB, "--dry-run", "--block-seconds", "0.5"],
     "argument --block-seconds: must be an integer from 0 to 2592000 s (got 0.5)"),
    ("guard-expected-codes-words", ["guard", *LB, "--dry-run", "--expected-codes", "fine"],
     "--expected-codes: use codes like \"200\" or \"2xx\", separated by commas (got 'fine')"),
    ("guard-holder-id-with-a-slash", ["guard", *LB, "--dry-run", "--holder-id", "a/b"],
     "--holder-id: no spaces, quotes or slashes (got 'a/b'; allowed: a name like HOST:PID)"),
    ("guard-shared-dir-with-the-cloudflare-lease", ["guard", *LB, "--dry-run", "--shared-dir", "{tmp}"],
     "--shared-dir: applies to --lease file only (got {tmp} with --lease cloudflare)"),
    ("guard-shared-dir-under-a-file", ["guard", *LB, "--dry-run", "--lease", "file", "--shared-dir", "{file}/guards"],
     "--shared-dir: cannot use it, not a directory (got {file}/guards; allowed: a directory drctl can write)"),
    ("guard-lease-ttl-with-a-file-lease", ["guard", *LB, "--dry-run", "--lease", "file", "--lease-ttl", "600"],
     "--lease-ttl: applies to --lease cloudflare only (got 600 with --lease file)"),
    ("guard-lease-ttl-below-four-intervals", ["guard", *LB, "--dry-run", "--interval", "60", "--lease-ttl", "100"],
     "--lease-ttl: must be at least 4 x the interval 60 s, 240 s, so the holder renews it in time (got 100; "),
    ("guard-lease-unknown", ["guard", *LB, "--lease", "etcd"], "argument --lease: invalid choice: 'etcd'"),
    ("guard-alert-webhook-not-http", ["guard", *LB, "--alert-webhook", "mailto:oncall@example.com"],
     "argument --alert-webhook: must be an http:// or https:// URL (got 'mailto:oncall@example.com')"),
    # -- drill ----------------------------------------------------------------------------------
    ("drill-without-yes", ["drill", *LB], "a drill fails over a stack and back: pass --yes to act, or --dry-run"),
    ("drill-keep-scratch-without-restore", ["drill", *LB, "--yes", "--keep-scratch"],
     "--keep-scratch is for drill --restore (the failover drill makes no scratch server): add --restore or leave out "
     "--keep-scratch"),
    ("drill-restore-on-the-cloud", ["drill", *LB, "--restore", "--yes", "--restore-on", "cloud"],
     "argument --restore-on: invalid choice: 'cloud' (choose from"),
    ("drill-restore-scratch-type-not-a-type", ["drill", *LB, "--restore", "--yes", "--scratch-type", "G6 Standard 2"],
     "argument --scratch-type: not a Linode type (got 'G6 Standard 2'; allowed: a Linode plan id such as g6-standard-2)"),
    ("drill-restore-allow-from-ipv6-everyone", ["drill", *LB, "--restore", "--yes", "--allow-from", "::/0"],
     "argument --allow-from: too wide: /0 would open the restored data to a large part of the internet (got '::/0'; "
     "allowed: a prefix of at least /32)"),
    ("drill-without-stack-or-outputs", ["drill", "--yes"], "give -s/--stack STACK or --outputs FILE"),
    ("drill-stack-and-outputs", ["drill", "-s", "dr-test", *LB, "--yes"],
     "argument --outputs: not allowed with argument -s/--stack"),
    ("drill-outputs-without-monitor", ["drill", "--outputs", "{no_monitor}", "--dry-run"],
     "--outputs {no_monitor}: drctl.monitor: Field required"),
    ("drill-unknown-fault", ["drill", *LB, "--yes", "--fault", "meteor"], "argument --fault: invalid choice: 'meteor'"),
    ("drill-unknown-target", ["drill", *LB, "--dry-run", "--target", "mars-1"],
     "--target: not a region of stack 'runbook-test' (got 'mars-1'; allowed: eu-west, ap-south)"),
    ("drill-target-is-the-primary", ["drill", *LB, "--yes", "--target", "us-east"],
     "--target: must be a DR region, not the primary (got 'us-east'; allowed: eu-west, ap-south)"),
    ("drill-max-duration-zero", ["drill", *LB, "--yes", "--max-duration", "0"],
     "argument --max-duration: must be a number above 0 and at most 86400 s (got 0)"),
    ("drill-max-duration-nan", ["drill", *LB, "--yes", "--max-duration", "nan"],
     "argument --max-duration: must be a number above 0 and at most 86400 s (got nan)"),
    ("drill-max-write-outage-zero", ["drill", *LB, "--yes", "--max-write-outage", "0"],
     "argument --max-write-outage: must be a number above 0 and at most 86400 s (got 0)"),
    ("drill-max-write-outage-longer-than-the-drill", ["drill", *LB, "--yes", "--max-duration", "600",
                                                      "--max-write-outage", "900"],
     "--max-write-outage: must be at most --max-duration 600 s (got 900; allowed: above 0, at most 600)"),
    ("drill-settle-negative", ["drill", *LB, "--yes", "--settle=-1"],
     "argument --settle: must be a number from 0 to 3600 s (got -1)"),
    ("drill-settle-over-an-hour", ["drill", *LB, "--yes", "--settle", "7200"],
     "argument --settle: must be a number from 0 to 3600 s (got 7200)"),
    ("drill-settle-not-below-max-duration", ["drill", *LB, "--yes", "--max-duration", "300", "--settle", "300"],
     "--settle: must be below --max-duration 300 s (got 300; allowed: 0 to below 300)"),
    ("drill-poll-zero", ["drill", *LB, "--yes", "--poll", "0"],
     "argument --poll: must be a number above 0 and at most 3600 s (got 0)"),
    ("drill-poll-inf", ["drill", *LB, "--yes", "--poll", "inf"],
     "argument --poll: must be a number above 0 and at most 3600 s (got inf)"),
    ("drill-writer-rate-negative", ["drill", *LB, "--yes", "--writer-rate=-5"],
     "argument --writer-rate: must be a number above 0 and at most 10000 (got -5)"),
    ("drill-writer-rate-zero", ["drill", *LB, "--yes", "--writer-rate", "0"],
     "argument --writer-rate: must be a number above 0 and at most 10000 (got 0)"),
    ("drill-writer-rate-huge", ["drill", *LB, "--yes", "--writer-rate", "1000000"],
     "argument --writer-rate: must be a number above 0 and at most 10000 (got 1000000)"),
    ("drill-catch-up-timeout-zero", ["drill", *LB, "--yes", "--catch-up-timeout", "0"],
     "argument --catch-up-timeout: must be a number above 0 and at most 86400 s (got 0)"),
    ("drill-origin-ca-file-missing", ["drill", *LB, "--yes", "--origin-ca-file", "{tmp}/origin-ca.pem"],
     "argument --origin-ca-file: no such file (got {tmp}/origin-ca.pem; allowed: a readable file)"),
    ("drill-report-dir-is-a-file", ["drill", *LB, "--yes", "--report-dir", "{file}"],
     "argument --report-dir: is a file (got {file}; allowed: a writable directory, or a new one in a writable directory)"),
    ("drill-all-regions-down-without-yes", ["drill", *LB, "--fault", "all-regions-down"],
     "a drill takes every region of a stack down: pass --yes to act, or --dry-run"),
    ("drill-all-regions-down-with-target", ["drill", *LB, "--yes", "--fault", "all-regions-down", "--target", "eu-west"],
     "--target: does not apply to --fault all-regions-down, which promotes nothing, writes no order and probes no origin (got "
     "--target; allowed: --fault nodes-reject, pool-disable or firewall-blackhole with it)"),
    ("drill-all-regions-down-with-writer-rate", ["drill", *LB, "--dry-run", "--fault", "all-regions-down",
                                                 "--writer-rate", "20"],
     "--writer-rate: does not apply to --fault all-regions-down, which promotes nothing, writes no order and "
     "probes no origin"),
    ("drill-all-regions-down-accepting-data-loss", ["drill", *LB, "--yes", "--fault", "all-regions-down",
                                                    "--accept-data-loss"],
     "--accept-data-loss: does not apply to --fault all-regions-down"),
    ("drill-all-regions-down-with-a-hook", ["drill", *LB, "--yes", "--fault", "all-regions-down", "--pre-hook",
                                            "/bin/true"],
     "--pre-hook: does not apply to --fault all-regions-down"),
    # -- rehearse -------------------------------------------------------------------------------
    ("rehearse-unknown-stack", ["rehearse", "-s", "dr-tset"], "--stack: no stack file Pulumi.dr-tset.yaml (got 'dr-tset'; "),
    ("rehearse-time-scale-zero", ["rehearse", "--time-scale", "0"],
     "argument --time-scale: must be a number above 0 and at most 1 (got 0)"),
    ("rehearse-time-scale-above-one", ["rehearse", "--time-scale", "1.5"],
     "argument --time-scale: must be a number above 0 and at most 1 (got 1.5)"),
    ("rehearse-time-scale-nan", ["rehearse", "--time-scale", "nan"],
     "argument --time-scale: must be a number above 0 and at most 1 (got nan)"),
    ("rehearse-unknown-fault", ["rehearse", "--fault", "meteor"], "argument --fault: invalid choice: 'meteor'"),
    ("rehearse-fault-with-unplanned", ["rehearse", "--unplanned", "--fault", "pool-disable"],
     "--fault: applies to --planned only, --unplanned kills the whole region (got pool-disable with --unplanned)"),
    ("rehearse-all-regions-down-unplanned", ["rehearse", "--unplanned", "--fault", "all-regions-down"],
     "--fault: applies to --planned only, --unplanned kills the whole region (got all-regions-down with --unplanned)"),
    ("rehearse-fault-with-automatic", ["rehearse", "--automatic", "--fault", "pool-disable"],
     "--fault: applies to --planned only, --automatic kills the whole region (got pool-disable with --automatic)"),
    ("rehearse-fault-with-restore", ["rehearse", "--restore", "--fault", "firewall-blackhole"],
     "--fault: applies to --planned only, --restore fails nothing (got firewall-blackhole with --restore)"),
    ("rehearse-restore-and-automatic", ["rehearse", "--restore", "--automatic"],
     "argument --automatic: not allowed with argument --restore"),
    ("rehearse-planned-and-unplanned", ["rehearse", "--planned", "--unplanned"],
     "argument --unplanned: not allowed with argument --planned"),
    ("rehearse-report-dir-under-a-file", ["rehearse", "--report-dir", "{file}/report"],
     "argument --report-dir: {file} is a file (got {file}/report; allowed: a writable directory"),
    ("rehearse-output-xml", ["rehearse", "-o", "xml"], "argument -o/--output: invalid choice: 'xml'"),
]


def write_json(path: Path, doc: object) -> str:
    path.write_text(json.dumps(doc))
    return str(path)


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The files the cases name, and an environment where nothing is reachable anyway."""
    monkeypatch.setenv("DRCTL_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "not-a-token")
    monkeypatch.setenv("DRCTL_CLOUDFLARE_BASE_URL", "http://192.0.2.1:9/client/v4")  # TEST-NET-1: never routed
    monkeypatch.delenv("LINODE_TOKEN", raising=False)
    lb_doc = runbook_support.outputs_doc(runbook_support.paper_servers(tmp_path))
    dns_doc = watch_shop.outputs_doc(list(watch_shop.REGIONS[:2]), ["rec-a", "rec-aaaa"])
    no_monitor = json.loads(json.dumps(lb_doc))
    del no_monitor["drctl"]["monitor"]
    round_robin = json.loads(json.dumps(lb_doc))
    round_robin["drctl"]["trafficMode"] = "round-robin"
    one_region = json.loads(json.dumps(lb_doc))
    one_region["drctl"]["regions"] = one_region["drctl"]["regions"][:1]
    port_text = json.loads(json.dumps(lb_doc))
    port_text["drctl"]["database"]["primary"]["port"] = "three-three-oh-six"
    (tmp_path / "not.json").write_text("drctl:\n  stack: prod\n")
    (tmp_path / "empty.json").write_text("")
    (tmp_path / "latin1.json").write_bytes('{"drctl": {"stack": "café"}}'.encode("latin-1"))
    (tmp_path / "plain.txt").write_text("not a directory\n")
    return {
        "tmp": str(tmp_path),
        "file": str(tmp_path / "plain.txt"),
        "lb": write_json(tmp_path / "lb.json", lb_doc),
        "dns": write_json(tmp_path / "dns.json", dns_doc),
        "dns_no_records": write_json(tmp_path / "dns-no-records.json",
                                     watch_shop.outputs_doc(list(watch_shop.REGIONS[:2]), [])),
        "a_list": write_json(tmp_path / "a-list.json", [lb_doc]),
        "empty_object": write_json(tmp_path / "empty-object.json", {}),
        "no_monitor": write_json(tmp_path / "no-monitor.json", no_monitor),
        "round_robin": write_json(tmp_path / "round-robin.json", round_robin),
        "one_region": write_json(tmp_path / "one-region.json", one_region),
        "port_text": write_json(tmp_path / "port-text.json", port_text),
        "not_json": str(tmp_path / "not.json"),
        "empty": str(tmp_path / "empty.json"),
        "latin1": str(tmp_path / "latin1.json"),
    }


@pytest.fixture
def nothing_reached(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every connection, listening socket and child process a case tries, refused and recorded."""
    attempts: list[str] = []

    def refuse(what: str):
        def refused(*args, **kwargs):
            attempts.append(f"{what}{args[1:2]}")
            raise OSError(f"test: no {what} in a bad-command-line case")
        return refused

    monkeypatch.setattr(socket.socket, "connect", refuse("connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", refuse("connect"))
    monkeypatch.setattr(socket.socket, "bind", refuse("bind"))
    monkeypatch.setattr(subprocess.Popen, "__init__", refuse("process"))
    return attempts


def fill(text: str, places: dict[str, str]) -> str:
    for name, value in places.items():
        text = text.replace("{" + name + "}", value)
    return text


def test_the_corpus_is_large_and_covers_every_command():
    names = [name for name, _, _ in CASES]
    assert len(names) == len(set(names)) and len(names) >= 60
    commands = {argv[0] for _, argv, _ in CASES}
    assert commands >= {"plan", "status", "promote", "failback", "watch", "drill", "rehearse", "restore", "archive"}


@pytest.mark.parametrize(("argv", "expected"), [(argv, expected) for _, argv, expected in CASES],
                         ids=[name for name, _, _ in CASES])
def test_a_bad_command_line_is_refused_with_one_line_naming_the_flag(argv, expected, places, nothing_reached, capsys):
    try:
        code = cli.main([fill(arg, places) for arg in argv])
    except SystemExit as exit_:  # argparse refuses the flag itself
        code = exit_.code
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    assert (code, out) == (2, ""), err
    lines = err.rstrip("\n").splitlines()
    assert any(line.startswith(("drctl: ", f"drctl {argv[0]}: ")) for line in lines), err  # says who refused
    assert fill(expected, places) in lines[-1], err
    assert nothing_reached == []


# -- every numeric flag, found in the parser: finite, in range, its range in its help ----------------

def numeric_flags() -> list[tuple[str, argparse.Action]]:
    subparsers = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return [(command, action) for command, parser in subparsers.choices.items() for action in parser._actions
            if hasattr(action.type, "allowed")]


NUMERIC_FLAGS = numeric_flags()


def test_the_numeric_flags_are_all_found():
    found = {(command, action.option_strings[-1]) for command, action in NUMERIC_FLAGS}
    assert {("promote", "--catch-up-timeout"), ("failback", "--traffic-timeout"), ("drill", "--writer-rate"),
            ("watch", "--metrics-port"), ("rehearse", "--time-scale")} <= found
    assert len(found) == 40  # promote 4, failback 2, watch 11, guard 12, drill 8, rehearse 1, archive 1, restore 1


@pytest.mark.parametrize(("command", "action"), NUMERIC_FLAGS,
                         ids=[f"{command} {action.option_strings[-1]}" for command, action in NUMERIC_FLAGS])
def test_every_numeric_flag_has_a_maximum_and_says_so_in_its_help(command, action):
    maximum = action.type.maximum
    assert maximum is not None
    assert f"at most {maximum:g}" in action.help or f" to {maximum:.0f}" in action.help, action.help


@pytest.mark.parametrize("given", ["nan", "inf", "-inf", "1e12", "-1e12", "twelve"])
@pytest.mark.parametrize(("command", "action"), NUMERIC_FLAGS,
                         ids=[f"{command} {action.option_strings[-1]}" for command, action in NUMERIC_FLAGS])
def test_every_numeric_flag_refuses_what_is_not_a_finite_number_in_range(command, action, given, capsys):
    flag = action.option_strings[-1]
    with pytest.raises(SystemExit) as exit_:
        cli.main([command, f"{flag}={given}"])
    out, err = capsys.readouterr()
    assert (exit_.value.code, out) == (2, "")
    assert err.splitlines()[-1] == f"drctl {command}: error: argument {flag}: must be {action.type.allowed} (got {given})"
