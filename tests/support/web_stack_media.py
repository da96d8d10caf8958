"""A web-stack node's media path for real (tests/support/web_stack.py): the buckets its rendered
media.json names, on the loopback S3 server of tests/support/object_store.py; the bucket server
(`rclone serve`, the flags of woocommerce-dr-media-serve.service) on the port the sandbox gave
nginx's bucket fallback; and the media agent the node was given, run one pass at a time
(`--once`) with its rendered settings, as the service user, reading the node's real /healthz.

What differs from a node, and only that: the rclone config's endpoints are the S3 server's region
endpoints instead of Linode's (the rendered key, remote names and bucket names stay).
"""

from __future__ import annotations

import configparser
import importlib.util
import json
import os
import shlex
import subprocess
from pathlib import Path
from types import ModuleType

from components import media_storage
from tests.support.binaries import require
from tests.support.media_nodes import serve_command
from tests.support.object_store import ObjectStore
from tests.support.waiting import wait_until
from tests.support.web_stack import WebStack, service_user

ETC = media_storage.ETC


class NodeMedia:
    def __init__(self, stack: WebStack, store: ObjectStore):
        self.stack, self.store = stack, store
        self.settings_path = stack.path(f"{ETC}/media.json")
        self.settings = json.loads(self.settings_path.read_text())
        self.region = self.settings["region"]
        self.buckets = {region: remote.partition(":")[2] for region, remote in self.settings["buckets"].items()}
        self.bucket = self.buckets[self.region]
        self.uploads = Path(self.settings["uploads_dir"])
        self.state = Path(self.settings["state_dir"])
        self.agent_path = stack.path("/usr/local/sbin/woocommerce-dr-media-agent")
        self._point_rclone_at(store)
        existing = {b["Name"] for b in store.client().list_buckets()["Buckets"]}
        for name in set(self.buckets.values()) - existing:
            store.bucket(name)
        self.serve: subprocess.Popen | None = None

    def _point_rclone_at(self, store: ObjectStore) -> None:
        config_path = Path(self.settings["rclone_config"])
        config = configparser.ConfigParser(interpolation=None)
        config.read_string(config_path.read_text())
        for region in self.buckets:
            config[media_storage.remote_name(region)]["endpoint"] = store.endpoints[region].url
        with config_path.open("w") as f:
            config.write(f)

    def _env(self) -> dict[str, str]:
        # As under systemd: no AWS_* settings of the test machine reach rclone; its cache in the state dir.
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        return {**env, "RCLONE_CACHE_DIR": str(self.state / "rclone-cache")}

    def _as_service_user(self) -> dict:
        if os.geteuid() != 0:
            return {}
        user = service_user()
        return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}

    def start_serving(self) -> NodeMedia:
        """The node's bucket server, where nginx's fallback looks (the sandbox's port for 8390)."""
        source = shlex.split(self.stack.path(f"{ETC}/media.env").read_text().partition("=")[2])[0]
        log = (self.stack.root / "log" / "media-serve.log").open("ab")
        self.serve = subprocess.Popen(
            serve_command(require("rclone"), source, Path(self.settings["rclone_config"]), self.stack.media_port),
            stdout=log, stderr=subprocess.STDOUT, env=self._env(), **self._as_service_user())
        log.close()
        wait_until(lambda: self._serving() or self.serve.poll() is not None, 20, "the bucket server")
        assert self.serve.poll() is None, self.stack.log("media-serve.log")
        return self

    def _serving(self) -> bool:
        import socket
        try:
            socket.create_connection(("127.0.0.1", self.stack.media_port), timeout=1).close()
            return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.serve is not None and self.serve.poll() is None:
            self.serve.terminate()
            self.serve.wait(timeout=15)

    def agent_pass(self, **overrides) -> dict:
        """One pass of the node's agent (`--once`), as the service user; its status. `overrides`
        change settings of this pass only (written to a copy of media.json)."""
        settings_path = self.settings_path
        if overrides:
            settings_path = self.state / "media-test.json"
            settings_path.write_text(json.dumps({**self.settings, **overrides}))
        done = subprocess.run(["python3", str(self.agent_path), "--settings", str(settings_path), "--once"],
                              capture_output=True, text=True, timeout=300, env=self._env(), **self._as_service_user())
        assert done.returncode == 0, done.stdout + done.stderr
        return json.loads(done.stdout)

    def spooled(self) -> list[str]:
        """The paths waiting in the delete spool, in entry order."""
        spool = self.state / "deletes"
        return [line for entry in sorted(spool.iterdir()) if not entry.name.startswith(".")
                for line in entry.read_text().splitlines() if line]

    def keys(self, prefix: str = "") -> set[str]:
        return self.store.keys(self.bucket, prefix)

    def agent_module(self) -> ModuleType:
        """The agent the node was given, as a module (its `replicate` is what a replica region runs)."""
        spec = importlib.util.spec_from_file_location("woocommerce_dr_media_agent", self.agent_path,
                                                      loader=None)
        if spec is None or spec.loader is None:  # no .py suffix: name the loader explicitly
            from importlib.machinery import SourceFileLoader
            loader = SourceFileLoader("woocommerce_dr_media_agent", str(self.agent_path))
            spec = importlib.util.spec_from_loader("woocommerce_dr_media_agent", loader)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
