"""The shop's media buckets as drctl sees them: lag per region for `drctl status`, and the copy that
`drctl failback` (home) and a planned `drctl promote` (to the new primary) make before traffic moves.

drctl reaches the buckets with the real rclone (Debian/Ubuntu package `rclone`) and the drctl key
from the stack outputs (`media`), handed to rclone in its environment (RCLONE_CONFIG_<REMOTE>_...),
never on disk or on a command line. The layout is the web nodes' (components/templates/web-node/
media-agent.py): `uploads/` the files under the same paths as /wp-content/uploads/, `dr/heartbeat.json`
written every few seconds by the primary region's agent, `dr/replicated.json` written by a DR
region's agent after each copy ({source, source_heartbeat, completed_at}), `attic/<time>/` what a
copy deleted or overwrote. A DR region's lag is now minus the source heartbeat its last copy saw.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from typing import Any

from drctl.stack.outputs import MediaOut, MediaRegionOut

UPLOADS = "uploads"
HEARTBEAT = "dr/heartbeat.json"
REPLICATED = "dr/replicated.json"
ATTIC = "attic"


class ObjectStorageError(Exception):
    """A bucket could not be read or written; the message names the bucket, never the key."""


@dataclass(frozen=True)
class MediaBuckets:
    """Every region's media bucket behind one rclone, with drctl's key."""

    media: MediaOut
    rclone: str = "rclone"
    timeout: float = 60.0

    def _remote(self, region: str) -> str:
        index = [r.region for r in self.media.regions].index(region)
        return f"drctlmedia{index}"

    def path(self, region: str, key: str = "") -> str:
        bucket = self._bucket(region)
        return f"{self._remote(region)}:{bucket.bucket}" + (f"/{key}" if key else "")

    def _bucket(self, region: str) -> MediaRegionOut:
        bucket = self.media.bucket(region)
        if bucket is None:
            raise ObjectStorageError(f"no media bucket for region {region!r} in the stack outputs")
        return bucket

    def _environment(self) -> dict[str, str]:
        # Only these remotes, whatever AWS_* or RCLONE_* settings the operator's shell has.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RCLONE_"))}
        for r in self.media.regions:
            prefix = f"RCLONE_CONFIG_{self._remote(r.region).upper()}_"
            endpoint = r.endpoint if "://" in r.endpoint else f"https://{r.endpoint}"
            env.update({
                f"{prefix}TYPE": "s3", f"{prefix}PROVIDER": "Other", f"{prefix}ENV_AUTH": "false",
                f"{prefix}ACCESS_KEY_ID": self.media.access_key.get_secret_value(),
                f"{prefix}SECRET_ACCESS_KEY": self.media.secret_key.get_secret_value(),
                f"{prefix}ENDPOINT": endpoint, f"{prefix}REGION": "us-east-1", f"{prefix}ACL": "private",
            })
        return env

    def run(self, *args: str, stdin: bytes | None = None, timeout: float | None = None) -> bytes:
        binary = shutil.which(self.rclone)
        if binary is None:
            raise ObjectStorageError("rclone is not installed where drctl runs (apt-get install rclone): "
                                     "needed to read the media buckets")
        command = [binary, "--config", "/dev/null", "--retries", "1", "--low-level-retries", "2",
                   "--contimeout", "5s", "--timeout", "30s", *args]
        try:
            done = subprocess.run(command, input=stdin, capture_output=True, env=self._environment(),
                                  timeout=timeout or self.timeout)
        except subprocess.TimeoutExpired:
            raise ObjectStorageError(f"rclone {args[0]} {args[1]}: no answer within {timeout or self.timeout:g} s") \
                from None
        if done.returncode != 0:
            last = (done.stderr.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
            raise ObjectStorageError(f"rclone {args[0]} {args[1]}: {last[:300]}")
        return done.stdout

    def read_json(self, region: str, key: str) -> dict[str, Any] | None:
        """The JSON object at `key`, None when there is none; ObjectStorageError when unreadable."""
        try:
            text = self.run("cat", self.path(region, key))
        except ObjectStorageError as err:
            if "not found" in str(err):  # rclone: "directory not found" for a missing object
                return None
            raise
        if not text:
            return None  # rclone cat of a missing object prints nothing and succeeds; no writer writes ""
        try:
            return json.loads(text)
        except ValueError:
            raise ObjectStorageError(f"{self.path(region, key)} is not JSON") from None

    def write_json(self, region: str, key: str, value: dict[str, Any]) -> None:
        self.run("rcat", self.path(region, key), stdin=json.dumps(value).encode())

    def copy_home(self, source: str, target: str, stamp: float, timeout: float = 3600,
                  why: str = "failback") -> dict[str, Any]:
        """Make `target`'s uploads the copy of `source`'s, as the agents do: the source heartbeat
        first, then `rclone sync` with what it deletes or overwrites moved to the target's attic
        (`attic/<time>-<why>/`, never destroyed), then the replicated marker. Returns the marker
        written."""
        beat = self.read_json(source, HEARTBEAT)
        heartbeat = float(beat["written_at"]) if beat else stamp
        attic = self.path(target, f"{ATTIC}/{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(stamp))}-{why}")
        self.run("sync", self.path(source, UPLOADS), self.path(target, UPLOADS), "--backup-dir", attic,
                 timeout=timeout)
        marker = {"source": source, "source_heartbeat": max(heartbeat, stamp), "completed_at": time.time()}
        self.write_json(target, REPLICATED, marker)
        return marker


def media_lag(buckets: MediaBuckets, primary: str | None, now: float) -> dict[str, dict[str, Any]]:
    """Per region: its bucket, and for the primary region the heartbeat's age, for every other the
    source and lag of its last copy; `error` where a bucket cannot be read."""
    found: dict[str, dict[str, Any]] = {}
    for r in buckets.media.regions:
        entry: dict[str, Any] = {"bucket": r.bucket, "storageRegion": r.storage_region}
        try:
            if r.region == primary:
                beat = buckets.read_json(r.region, HEARTBEAT)
                entry["role"] = "primary"
                entry["heartbeatAgeSeconds"] = None if beat is None else round(now - float(beat["written_at"]), 1)
            else:
                marker = buckets.read_json(r.region, REPLICATED)
                entry["role"] = "copy"
                entry["source"] = marker.get("source") if marker else None
                entry["lagSeconds"] = None if marker is None else round(now - float(marker["source_heartbeat"]), 1)
        except (ObjectStorageError, KeyError, TypeError, ValueError) as err:
            entry["error"] = str(err)
        found[r.region] = entry
    return found


def media_problems(lag: dict[str, dict[str, Any]], primary: str | None, objective: int) -> list[str]:
    problems = []
    for region, entry in lag.items():
        if "error" in entry:
            problems.append(f"{region}: media bucket unreadable: {entry['error']}")
        elif entry["role"] == "primary":
            age = entry["heartbeatAgeSeconds"]
            if age is None or age > objective:
                problems.append(f"{region}: media heartbeat {'missing' if age is None else f'{age:.0f} s old'}: the "
                                "primary region's media agent is not writing to its bucket")
        elif entry["lagSeconds"] is None:
            problems.append(f"{region}: media never copied here: lag unknown")
        elif entry["lagSeconds"] > objective:
            problems.append(f"{region}: media lag {entry['lagSeconds']:.0f} s, beyond objectives.mediaRpoSeconds "
                            f"({objective} s)")
        elif primary is not None and entry["source"] != primary:
            problems.append(f"{region}: media copied from {entry['source']}, not from the primary in {primary}")
    return problems
