"""Web nodes' media path for real, on loopback: per node the nginx uploads snippet the program
renders (components/templates/web-node/nginx-media.conf), rclone serving the region's bucket with
the flags of woocommerce-dr-media-serve.service, and the media agent (media-agent.py) running its
loop against the S3 server of tests/support/object_store.py, with the rclone config and settings the
program renders (components/media_storage.py).

Only what a test cannot run is replaced, each named here: paths move into a sandbox, the loopback
ports are reserved ones instead of 80 and 8390, and the region's database role, which the agent
reads from the node's /healthz, comes from a small HTTP server whose answer the test sets
(`Region.role`), as promote and failback change it on a real stack.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shlex
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from components import media_storage
from components.media_storage import BucketAccess, MediaNode
from drctl.local.ports import PortReservation
from tests.support.binaries import require
from tests.support.object_store import ACCESS_KEY, SECRET_KEY, ObjectStore

TEMPLATES = media_storage.TEMPLATES


class RoleServer:
    """Answers GET /healthz with {"db_role": role} (the only field the agent reads)."""

    def __init__(self, role: str):
        self.role = role
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = json.dumps({"db_role": owner.role}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/healthz"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    # The body ended early: rclone found the file in its listing (cached up to a second) and then
    # not in the bucket, because it was deleted or replaced in between. The shopper sees a broken
    # download, never a wrong file; tests wait past it.
    truncated: bool = False


def serve_command(rclone: str, source: str, config: Path, port: int) -> list[str]:
    """woocommerce-dr-media-serve.service's ExecStart, with the sandbox's config and port."""
    unit = (TEMPLATES / "woocommerce-dr-media-serve.service").read_text()
    line = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    command = shlex.split(line.removeprefix("ExecStart="))
    replace = {"/usr/bin/rclone": rclone, "${MEDIA_SOURCE}": source,
               f"{media_storage.RCLONE_CONFIG}": str(config), "127.0.0.1:8390": f"127.0.0.1:{port}"}
    return [replace.get(word, word) for word in command]


@dataclass
class Node:
    region: str
    index: int
    root: Path
    store: ObjectStore
    buckets: tuple[BucketAccess, ...]
    healthz_url: str
    max_upload_megabytes: int = 16
    media_rpo_seconds: int = 20
    # Sandbox default: the reconcile pass every second instead of every minute, so a test of a
    # delete made through another node does not wait a minute. None: the program's setting.
    reconcile_interval_seconds: int | None = 1
    processes: list[subprocess.Popen] = field(default_factory=list)

    def __post_init__(self):
        self.docroot = self.root / "www"
        self.uploads = self.docroot / "wp-content" / "uploads"
        self.uploads.mkdir(parents=True)
        self.state = self.root / "state"
        (self.state / "deletes").mkdir(parents=True)
        self.media = MediaNode(region=self.region, buckets=self.buckets, access_key=ACCESS_KEY,
                               secret_key=SECRET_KEY, replicator=self.index == 0,
                               max_upload_megabytes=self.max_upload_megabytes, media_rpo_seconds=self.media_rpo_seconds)
        self.rclone_config = self.root / "media-rclone.conf"
        self.rclone_config.write_text(media_storage.rclone_config(self.buckets, ACCESS_KEY, SECRET_KEY))
        settings = media_storage.agent_settings(self.media, uploads_dir=str(self.uploads), state_dir=str(self.state),
                                                config_path=str(self.rclone_config), healthz_url=self.healthz_url)
        if self.reconcile_interval_seconds is not None:
            settings["reconcile_interval_seconds"] = self.reconcile_interval_seconds
        settings["rclone"] = require("rclone")
        self.settings_path = self.root / "media.json"
        self.settings_path.write_text(json.dumps(settings))
        self.own_bucket = next(b for b in self.buckets if b.region == self.region).name

    # --- processes ----------------------------------------------------------------------------
    def start(self) -> Node:
        self._serve_port, self._nginx_port = PortReservation(), PortReservation()
        self.port = self._nginx_port.port
        rclone = require("rclone")
        source = f"{media_storage.remote_name(self.region)}:{self.own_bucket}/uploads"
        self._spawn(serve_command(rclone, source, self.rclone_config, self._serve_port.port), "serve")
        self._spawn([require("nginx"), "-p", str(self.root), "-c", str(self._nginx_config())], "nginx")
        self.agent = self._spawn([sys.executable, str(TEMPLATES / "media-agent.py"), "--settings",
                                  str(self.settings_path)], "agent")
        from tests.support.waiting import wait_until
        wait_until(lambda: self._answers(self._serve_port.port) and self._answers(self.port),
                   timeout=20, what=f"{self.region} node {self.index}'s nginx and bucket server")
        return self

    def _spawn(self, command: list[str], name: str) -> subprocess.Popen:
        log = open(self.root / f"{name}.log", "ab")  # noqa: SIM115 (kept open for the process's life)
        # As under systemd: no AWS_* settings of the test machine's environment reach rclone.
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()
        for reservation in (getattr(self, "_serve_port", None), getattr(self, "_nginx_port", None)):
            if reservation is not None:
                reservation.release()

    def stop_agent(self) -> None:
        self.agent.terminate()
        self.agent.wait(timeout=10)
        self.processes.remove(self.agent)

    def log(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    @staticmethod
    def _answers(port: int) -> bool:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/")
            connection.getresponse().read()
            return True
        except OSError:
            return False

    def _nginx_config(self) -> Path:
        snippet = media_storage.render("nginx-media.conf", self.max_upload_megabytes)
        snippet = snippet.replace("127.0.0.1:8390", f"127.0.0.1:{self._serve_port.port}")
        (self.root / "media.conf").write_text(snippet)
        site = (TEMPLATES / "nginx-site.conf").read_text()
        # The site's own refusals, as they stand in nginx-site.conf, so the snippet is tested beside them.
        refusals = "\n".join(re.findall(r"    location ~[^{]*\{\s*deny all;\s*\}", site))
        for d in ("logs", "tmp"):
            (self.root / d).mkdir(exist_ok=True)
        config = f"""
daemon off;
user root;  # the sandbox belongs to root; on a node nginx runs as www-data
pid {self.root}/nginx.pid;
error_log {self.root}/logs/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {self.root}/tmp/body;
    proxy_temp_path {self.root}/tmp/proxy;
    fastcgi_temp_path {self.root}/tmp/fastcgi;
    uwsgi_temp_path {self.root}/tmp/uwsgi;
    scgi_temp_path {self.root}/tmp/scgi;
    server {{
        listen 127.0.0.1:{self.port};
        root {self.docroot};
        include {self.root}/media.conf;
{refusals}
        location / {{ return 404; }}
    }}
}}
"""
        path = self.root / "nginx.conf"
        path.write_text(config)
        return path

    # --- as a shopper and as WordPress --------------------------------------------------------
    def get(self, path: str, method: str = "GET") -> Response:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path)
            answer = connection.getresponse()
            headers = {k.lower(): v for k, v in answer.getheaders()}
            try:
                return Response(answer.status, headers, answer.read())
            except http.client.IncompleteRead as err:
                return Response(answer.status, headers, err.partial, truncated=True)
        finally:
            connection.close()

    def upload(self, relative: str, content: bytes) -> Path:
        """What WordPress does with an upload: write it under wp-content/uploads (atomically, as
        move_uploaded_file renames the PHP temporary file into place)."""
        target = self.uploads / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.part")
        temporary.write_bytes(content)
        temporary.rename(target)
        return target

    def delete(self, relative: str) -> None:
        """What WordPress does when an attachment is deleted: wp_delete_file() on each path, which
        the media-deletes mu-plugin spools for the agent, then unlink (no file here: fine)."""
        spooled = self.state / "deletes" / f"{relative.replace('/', '_')}.{len(list((self.state / 'deletes').iterdir()))}"
        spooled.write_text(relative + "\n")
        (self.uploads / relative).unlink(missing_ok=True)

    def status(self) -> dict:
        try:
            return json.loads((self.state / "status.json").read_text())
        except (OSError, ValueError):
            return {}


@dataclass
class Region:
    name: str
    nodes: list[Node]
    role_server: RoleServer

    @property
    def role(self) -> str:
        return self.role_server.role

    @role.setter
    def role(self, value: str) -> None:
        self.role_server.role = value

    @property
    def bucket(self) -> str:
        return self.nodes[0].own_bucket


class MediaShop:
    """Regions (the first primary) of `nodes` web nodes each, over one ObjectStore."""

    def __init__(self, root: Path, regions: tuple[str, ...] = ("us-east", "eu-west"), nodes: int = 2,
                 media_rpo_seconds: int = 20, store_in_own_process: bool = False,
                 reconcile_interval_seconds: int | None = 1):
        self.store = ObjectStore(regions=regions, own_process=store_in_own_process).__enter__()
        self.buckets = tuple(
            BucketAccess(region=r, storage_region=r, name=self.store.bucket(f"wcdr-test-media-{r}"),
                         endpoint=self.store.endpoints[r].url)
            for r in regions
        )
        self.regions: dict[str, Region] = {}
        try:
            for position, region in enumerate(regions):
                role = RoleServer("primary" if position == 0 else "replica")
                members = [Node(region, i, root / region / f"node-{i}", self.store, self.buckets, role.url,
                                media_rpo_seconds=media_rpo_seconds,
                                reconcile_interval_seconds=reconcile_interval_seconds) for i in range(nodes)]
                self.regions[region] = Region(region, members, role)
                for node in members:
                    node.start()
        except BaseException:
            self.close()
            raise

    def __getitem__(self, region: str) -> Region:
        return self.regions[region]

    def close(self) -> None:
        for region in self.regions.values():
            for node in region.nodes:
                node.stop()
            region.role_server.close()
        self.store.__exit__(None, None, None)
