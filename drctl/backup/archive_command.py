"""`drctl archive`: the binlog archiver as a service, on the host that runs it (the DR replica's).

    drctl archive --config /etc/woocommerce-dr/archive.json [--alert-command CMD] [--alert-webhook URL]

Resumes where the archive in the bucket ends (or takes the first base backup), streams the
writable primary's binlog into the bucket in sealed pieces every tenth of the backup RPO, takes a
base backup every `baseEveryHours` and prunes beyond `retentionDays`; follows a promotion by
itself. Alerts (JSON event on stdin or POSTed) when the archive falls behind, catches up or shows
a gap. Runs until SIGTERM/SIGINT. The settings file is described in drctl/backup/archive_config.py
and docs/backups.md.
"""

from __future__ import annotations

import argparse
import signal
import threading

from drctl.backup.archive_config import ArchiveConfigError, load_settings
from drctl.backup.binlog_events import BinlogFormatError
from drctl.backup.sealing import ArchiveKeyError
from drctl.backup.service import ArchiveFlavourError, ArchiveService
from drctl.cloud.s3_bucket import StoreUnavailable
from drctl.stack.command_line import EXIT_FAILED, EXIT_OK, EXIT_USAGE, fail, number, program, readable_file
from drctl.watch.alerts import Alerter


def url(text: str) -> str:
    if not text.startswith(("https://", "http://")):
        raise argparse.ArgumentTypeError(f"must be an http:// or https:// URL (got {text[:40]!r})")
    return text


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("archive", help="the binlog archiver service (point-in-time recovery)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=readable_file, required=True, metavar="FILE",
                   help="the archiver's settings (JSON, mode 0600: it holds keys and a password)")
    p.add_argument("--alert-webhook", type=url, metavar="URL",
                   help="POST a JSON event here when the archive falls behind, catches up or shows a gap")
    p.add_argument("--alert-command", type=program, metavar="CMD",
                   help="run this command (event JSON on stdin, DRCTL_ALERT_* variables) on the same events")
    p.add_argument("--alert-timeout", type=number(float, 0, above=True, maximum=300, unit="s"), default=5.0,
                   metavar="S", help="seconds an alert hook may take (default 5; above 0, at most 300)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    try:
        settings = load_settings(args.config)
        alerter = Alerter(args.alert_webhook, args.alert_command, args.alert_timeout)
        service = ArchiveService(settings, say=lambda line: print(line, flush=True),
                                 alert=alerter.send if alerter.configured else None)
    except (ArchiveConfigError, ArchiveKeyError) as err:
        fail("archive", str(err))
        return EXIT_USAGE
    try:
        service.check_tools()  # before anything starts: the tools here must read the settings' kind of server
    except ArchiveFlavourError as err:
        fail("archive", str(err))
        return EXIT_FAILED
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    try:
        service.run(stop.is_set)
    except StoreUnavailable as err:  # the first base backup needs the bucket; later outages are retried
        fail("archive", str(err))
        return EXIT_FAILED
    except (ArchiveFlavourError, BinlogFormatError) as err:  # the wrong kind of server or archive
        fail("archive", str(err))
        return EXIT_FAILED
    return EXIT_OK
