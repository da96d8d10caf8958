#!/usr/bin/env python3
"""woocommerce-dr media agent: keeps a web node's WordPress uploads in its region's bucket, and
keeps a DR region's bucket a copy of the primary region's.

WordPress writes uploads to the local disk as it always does (thumbnails, image editing and plugins
all expect a file system). This agent, on every web node, every `push_interval_seconds`:

- pushes new and changed local files to `<region bucket>/uploads/` (rclone copy of exactly those
  files); a file whose push failed stays pending and is retried, so an unreachable bucket loses
  nothing and the upload itself never fails;
- moves to the bucket's `attic/<time>-deleted/` what WordPress deleted (the media-deletes mu-plugin
  spools each path; WordPress on one node deletes files another node uploaded, which exist only in
  the bucket); a path the bucket never had is no error;
- every `reconcile_interval_seconds`, drops local copies of files it pushed earlier that are gone
  from the bucket (deleted through another node, or moved to the attic by a failback), so a stale
  local file can never shadow a delete: no resurrection.

On the region's first node (`replicator: true`) it also follows the database role, read from the
node's own /healthz, so the bucket that takes writes follows the database, never a config change:
- database writable (primary region): writes `dr/heartbeat.json` {region, written_at} in its bucket;
- database read-only (DR region): every `replicate_interval_seconds` reads the freshest primary
  heartbeat among the other regions' buckets, syncs that bucket's `uploads/` into its own, moving
  whatever the sync deletes or overwrites to `attic/<time>/` (never destroyed), and then writes
  `dr/replicated.json` {source, source_heartbeat, completed_at}. Everything uploaded to the source
  bucket before `source_heartbeat` is in this bucket: now - source_heartbeat is the media lag;
- every `prune_interval_seconds`, removes the attic folders older than `attic_retention_days` from
  its own bucket (by the time in the folder's name: when the objects went there), never anything
  outside `attic/`.

State and what /healthz reports: `<state_dir>/status.json`. Standard library only, plus rclone.
"""

from __future__ import annotations

import argparse
import calendar
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

UPLOADS = "uploads"
HEARTBEAT = "dr/heartbeat.json"
REPLICATED = "dr/replicated.json"
ATTIC = "attic"
# attic/<time>/ (replication), attic/<time>-failback/ (drctl failback), attic/<time>-deleted/ (deletes
# through WordPress). A folder whose name is not one of these is never pruned.
ATTIC_FOLDER = re.compile(r"(\d{8}T\d{6}Z)(-[a-z]+)?")
STAMP = "%Y%m%dT%H%M%SZ"


def attic_stamp(when: float) -> str:
    return time.strftime(STAMP, time.gmtime(when))


def attic_folder_time(name: str) -> float | None:
    """When the objects of attic folder `name` went to the attic (UTC), or None if it is not ours."""
    match = ATTIC_FOLDER.fullmatch(name)
    if match is None:
        return None
    try:
        return float(calendar.timegm(time.strptime(match[1], STAMP)))
    except ValueError:
        return None


def log(message: str) -> None:
    print(f"woocommerce-dr-media: {message}", file=sys.stderr, flush=True)


class RcloneError(Exception):
    pass


class Rclone:
    def __init__(self, binary: str, config: str):
        self.binary, self.config = binary, config

    def run(self, *args: str, stdin: bytes | None = None, timeout: float = 300) -> bytes:
        command = [self.binary, "--config", self.config, "--retries", "1", "--low-level-retries", "2",
                   "--contimeout", "5s", "--timeout", "30s", *args]
        # The remotes carry their own endpoint and key: AWS_* settings of the environment (a CA
        # bundle, a profile) are not for them.
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        try:
            done = subprocess.run(command, input=stdin, capture_output=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            raise RcloneError(f"rclone {args[0]} timed out after {timeout:g} s") from None
        if done.returncode != 0:
            # rclone's error text names the remote and the object, never the key.
            last = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise RcloneError(f"rclone {args[0]} failed ({done.returncode}): {last[0][:300]}")
        return done.stdout


class Agent:
    def __init__(self, settings: dict):
        self.s = settings
        self.region = settings["region"]
        self.uploads = Path(settings["uploads_dir"])
        self.state_dir = Path(settings["state_dir"])
        self.spool = self.state_dir / "deletes"
        self.rclone = Rclone(settings.get("rclone", "rclone"), settings["rclone_config"])
        self.buckets: dict[str, str] = settings["buckets"]  # region -> "remote:bucket"
        self.own = self.buckets[self.region]
        self.manifest_path = self.state_dir / "pushed.json"
        self.status_path = self.state_dir / "status.json"
        self.manifest: dict[str, list[int]] = self._load(self.manifest_path, {})
        self.status: dict = self._load(self.status_path, {})
        self.last_reconcile = 0.0
        self.last_replicate = 0.0
        self.last_prune = 0.0

    # --- state files ---------------------------------------------------------------------------
    @staticmethod
    def _load(path: Path, default):
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return default

    def _save(self, path: Path, value) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=self.state_dir, delete=False) as f:
            json.dump(value, f)
        os.chmod(f.name, 0o644)
        os.replace(f.name, path)

    # --- one pass ------------------------------------------------------------------------------
    def cycle(self) -> dict:
        now = time.time()
        problems = []
        try:
            # One cheap listing first: with the bucket unreachable every step would wait out rclone's
            # retries in turn; this way a pass takes seconds and says once what is wrong.
            self.rclone.run("lsf", "--max-depth", "1", self.own, timeout=20)
        except RcloneError as err:
            return self._report(now, [f"bucket {self.own} unreachable: {err}"])
        for step in (self.push, self.push_deletes):
            try:
                step()
            except RcloneError as err:
                problems.append(str(err))
        if now - self.last_reconcile >= self.s.get("reconcile_interval_seconds", 60):
            try:
                self.reconcile()
                self.last_reconcile = now
            except RcloneError as err:
                problems.append(str(err))
        if self.s.get("replicator"):
            try:
                self.follow_role(now)
            except (RcloneError, OSError, ValueError) as err:
                problems.append(str(err))
            if now - self.last_prune >= self.s.get("prune_interval_seconds", 3600):
                try:
                    self.status["attic"] = prune_attic(self.rclone, self.own, self.s.get("attic_retention_days", 30),
                                                       now, self.state_dir)
                    self.last_prune = now
                except RcloneError as err:
                    problems.append(str(err))
        return self._report(now, problems)

    def _report(self, now: float, problems: list[str]) -> dict:
        pending = self.pending()
        now = time.time()
        oldest = min((p[1] for p in pending.values()), default=None)
        self.status.update({
            "region": self.region,
            "checked_at": now,
            "pending_files": len(pending),
            "oldest_pending_seconds": round(now - oldest, 3) if oldest else 0,
            "pending_deletes": len(self._spooled()),
            "problem": "; ".join(problems) or None,
        })
        if not problems:
            self.status["last_ok_at"] = now
        self._save(self.status_path, self.status)
        return self.status

    def local_files(self) -> dict[str, list[int]]:
        found = {}
        if not self.uploads.is_dir():
            return found
        for directory, _dirs, names in os.walk(self.uploads):
            for name in names:
                path = Path(directory, name)
                try:
                    st = path.stat()
                except FileNotFoundError:
                    continue
                found[str(path.relative_to(self.uploads))] = [st.st_size, st.st_mtime_ns]
        return found

    def pending(self) -> dict[str, tuple[list[int], float]]:
        """Local files not in the bucket as they are now: path -> (size/mtime, mtime seconds)."""
        return {rel: (sig, sig[1] / 1e9) for rel, sig in self.local_files().items() if self.manifest.get(rel) != sig}

    def push(self) -> None:
        pending = self.pending()
        if not pending:
            return
        with tempfile.NamedTemporaryFile("w", dir=self.state_dir, suffix=".list") as listing:
            listing.write("".join(f"{rel}\n" for rel in sorted(pending)))
            listing.flush()
            self.rclone.run("copy", str(self.uploads), f"{self.own}/{UPLOADS}", "--files-from-raw", listing.name,
                            "--no-traverse")
        for rel, (sig, _) in pending.items():
            self.manifest[rel] = sig
        self._save(self.manifest_path, self.manifest)

    def _spooled(self) -> list[Path]:
        # Dot names are the mu-plugin's entries still being written (it renames them when complete).
        return sorted(p for p in self.spool.glob("*") if not p.name.startswith(".")) if self.spool.is_dir() else []

    def push_deletes(self) -> None:
        entries = self._spooled()
        # Deleted here by WordPress, never through the spool (WordPress bypassing wp_delete_file):
        # what this node pushed and no longer has goes too.
        if not self.uploads.is_dir():
            return  # not mounted or not installed yet: that is no reason to delete anything
        local = self.local_files()
        paths = {rel for rel in self.manifest if rel not in local}
        for entry in entries:
            paths.update(line for line in entry.read_text().splitlines() if line and ".." not in line.split("/"))
        paths = {p for p in paths if p not in local}  # uploaded again since: keep
        if paths:
            # Into the attic, never away, like every other delete (docs/media.md); one rclone run for
            # them all. A path the bucket does not have (never pushed, or moved already by another
            # node) is skipped by rclone without an error: nothing to do is not a failure.
            with tempfile.NamedTemporaryFile("w", dir=self.state_dir, suffix=".deletes") as listing:
                listing.write("".join(f"{rel}\n" for rel in sorted(paths)))
                listing.flush()
                self.rclone.run("move", f"{self.own}/{UPLOADS}",
                                f"{self.own}/{ATTIC}/{attic_stamp(time.time())}-deleted",
                                "--files-from-raw", listing.name, "--no-traverse")
            for rel in paths:
                self.manifest.pop(rel, None)
        self._save(self.manifest_path, self.manifest)
        for entry in entries:
            entry.unlink(missing_ok=True)

    def reconcile(self) -> None:
        remote = set(self.rclone.run("lsf", "-R", "--files-only", f"{self.own}/{UPLOADS}").decode().splitlines())
        local = self.local_files()
        for rel, sig in list(self.manifest.items()):
            if rel not in remote and local.get(rel) == sig:
                (self.uploads / rel).unlink(missing_ok=True)
                del self.manifest[rel]
                log(f"{rel}: gone from the bucket, local copy removed")
        self._save(self.manifest_path, self.manifest)

    # --- the region's role ---------------------------------------------------------------------
    def database_role(self) -> str | None:
        try:
            # The URL is the node's own /healthz from media.json: http on loopback.
            with urllib.request.urlopen(self.s["healthz_url"], timeout=5) as answer:  # noqa: S310
                return json.load(answer).get("db_role")
        except OSError as err:
            body = getattr(err, "read", lambda: b"")()
            try:
                return json.loads(body).get("db_role")
            except ValueError:
                return None

    def follow_role(self, now: float) -> None:
        role = self.database_role()
        self.status["db_role"] = role
        if role == "primary":
            beat = {"region": self.region, "written_at": now}
            self.rclone.run("rcat", f"{self.own}/{HEARTBEAT}", stdin=json.dumps(beat).encode())
            self.status["heartbeat_at"] = now
        elif role == "replica" and now - self.last_replicate >= self.s.get("replicate_interval_seconds", 30):
            self.replicate(now)
            self.last_replicate = now

    def freshest_primary(self, now: float) -> tuple[str, float] | None:
        """The region whose bucket holds the newest primary heartbeat, if it is fresher than the
        objective: an old heartbeat is a former primary's, never a source (copying from it would
        move newer files to the attic)."""
        oldest = now - float(self.s.get("media_rpo_seconds", 300))
        best = None
        for region, bucket in self.buckets.items():
            if region == self.region:
                continue
            try:
                beat = json.loads(self.rclone.run("cat", f"{bucket}/{HEARTBEAT}", timeout=30))
            except (RcloneError, ValueError):
                continue  # a region down or never primary: not a source
            if beat.get("region") != region or float(beat["written_at"]) < oldest:
                continue
            if best is None or beat["written_at"] > best[1]:
                best = (region, float(beat["written_at"]))
        return best

    def replicate(self, now: float) -> None:
        found = self.freshest_primary(now)
        if found is None:
            raise RcloneError("no other region's bucket has a fresh primary heartbeat: nothing to replicate from")
        source, beat = found
        replicate(self.rclone, self.buckets[source], self.own, source, beat, now)
        self.status["replicated"] = {"source": source, "source_heartbeat": beat, "completed_at": time.time()}


def replicate(rclone: Rclone, source: str, target: str, source_region: str, heartbeat: float, stamp: float) -> None:
    """Make `target`/uploads the copy of `source`/uploads as of `heartbeat` (read before the sync
    starts). Deletes go last (rclone sync deletes after copying) and into the attic, never away."""
    attic = f"{target}/{ATTIC}/{attic_stamp(stamp)}"
    rclone.run("sync", f"{source}/{UPLOADS}", f"{target}/{UPLOADS}", "--backup-dir", attic, timeout=3600)
    marker = {"source": source_region, "source_heartbeat": heartbeat, "completed_at": time.time()}
    rclone.run("rcat", f"{target}/{REPLICATED}", stdin=json.dumps(marker).encode())


def prune_attic(rclone: Rclone, bucket: str, retention_days: float, now: float, workdir: Path) -> dict:
    """Remove from `bucket`/attic/ the folders that went there more than `retention_days` ago.

    The age is the time in the folder's name (when its objects were moved there), not the objects'
    own modification times, which rclone carries over from the files (a product image of 2019
    deleted yesterday is one day in the attic). Only `attic/<folder>/` paths of folders named as
    this agent and drctl name them are removed; everything else in the bucket is out of reach of
    the filter. Idempotent: another node pruning the same folders at the same time deletes what is
    left, and objects already gone are no error."""
    cutoff = now - retention_days * 86400
    names = rclone.run("lsf", "--dirs-only", f"{bucket}/{ATTIC}", timeout=120).decode().splitlines()
    folders = [n.rstrip("/") for n in names]
    expired = sorted(f for f in folders if (t := attic_folder_time(f)) is not None and t < cutoff)
    if expired:
        with tempfile.NamedTemporaryFile("w", dir=workdir, suffix=".filter") as rules:
            rules.write("".join(f"+ /{folder}/**\n" for folder in expired) + "- **\n")
            rules.flush()
            rclone.run("delete", f"{bucket}/{ATTIC}", "--filter-from", rules.name, timeout=3600)
        log(f"attic: removed {len(expired)} folder(s) older than {retention_days:g} days: {expired[0]} .. {expired[-1]}")
    return {"pruned_at": now, "removed_folders": len(expired), "kept_folders": len(folders) - len(expired)}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", default="/etc/woocommerce-dr/media.json")
    parser.add_argument("--once", action="store_true", help="one pass, then exit (status on stdout)")
    args = parser.parse_args(argv)
    agent = Agent(json.loads(Path(args.settings).read_text()))
    if args.once:
        print(json.dumps(agent.cycle()))
        return 0
    interval = float(agent.s.get("push_interval_seconds", 2))
    while True:
        started = time.monotonic()
        status = agent.cycle()
        if status["problem"]:
            log(status["problem"])
        time.sleep(max(0.0, interval - (time.monotonic() - started)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
