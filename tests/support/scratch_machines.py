"""The machines behind the fake Linode API's created instances (tests/support/fake_linode.py): each
is a real MariaDB server on this host, booted from the user data drctl sent, the way cloud-init and
the user data's own scripts would boot a new Linode.

    machines = ScratchMachines(tmp_path, mariadb_template)
    with FakeLinode(machines=machines) as fake: ...   # POST /linode/instances boots one

What a boot does, in a background thread (a real Linode answers the API long before its database):
- writes every `write_files` entry of the cloud-config into a sandbox root, with its mode;
- runs the user data's own certificate script (`drctl-scratch-tls`) with the address this machine
  has, so the certificate drctl verifies is the one the real script makes;
- starts MariaDB with the settings file drctl sent, every `key = value` of it as a server option
  (paths moved into the sandbox, `bind-address` the machine's own address, on port 3306);
- runs the account's SQL through the `mariadb` client as root, as the setup script does, and
  deletes it.
Each machine has an address of its own in 127.0.0.0/8 (Linux routes all of it to loopback), so
drctl reaches it on port 3306 just as it reaches a Linode's public IPv4. Only MariaDB archives can
be played: Debian has no MySQL 8 server.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from drctl.backup import scratch_linode
from drctl.local.mariadb import LocalCA
from tests.support.binaries import need
from tests.support.fake_linode import FakeLinode
from tests.support.mariadb import MariaDBServer

_counter = iter(range(1, 250))


def machine_address() -> str:
    """An address in 127.0.0.0/8 no other test process of this machine uses."""
    return f"127.77.{os.getpid() % 250 + 1}.{next(_counter)}"


class ScratchMachine:
    def __init__(self, base: Path, instance_id: int, user_data: str, template: Path | None):
        self.dir = base / f"linode-{instance_id}"
        self.root = self.dir / "root"
        self.address = machine_address()
        self.user_data = user_data
        self.template = template
        self.server: MariaDBServer | None = None
        self.booted = False
        self.failure: BaseException | None = None
        self._thread = threading.Thread(target=self._boot, daemon=True, name=f"linode-{instance_id}")
        self._thread.start()

    def _boot(self) -> None:
        try:
            doc = yaml.safe_load(self.user_data)
            for entry in doc["write_files"]:
                path = self.file(entry["path"])
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(entry["content"])
                path.chmod(int(entry.get("permissions", "0644"), 8))
            server_dir = self.file(scratch_linode.SERVER_DIR)
            subprocess.run(["sh", str(self.file("/usr/local/sbin/drctl-scratch-tls")), str(server_dir), self.address],
                           check=True, capture_output=True)
            tls = LocalCA(ca=str(server_dir / "ca.pem"), cert=str(server_dir / "server-cert.pem"),
                          key=str(server_dir / "server-key.pem"))
            self.server = MariaDBServer(self.dir, scratch_linode.SERVER_ID, tls, name="db", template=self.template,
                                        extra_args=self.server_options())
            self.server.start(timeout=120)
            account = self.file(f"{scratch_linode.SERVER_DIR}/account.sql")
            with open(account, "rb") as sql:
                subprocess.run([need("mariadb")["mariadb"], f"--socket={self.server.socket}", "-u", "root"], stdin=sql,
                               check=True, capture_output=True)
            account.unlink()
            self.booted = True
        except BaseException as err:  # the test reads it: a machine that did not boot never answers
            self.failure = err

    def file(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def settings_file(self) -> Path:
        return self.file(scratch_linode.FAMILIES["mariadb"]["settings"])

    def server_options(self) -> tuple[str, ...]:
        options = []
        for line in self.settings_file().read_text().splitlines():
            key, sep, value = (part.strip() for part in line.partition("="))
            if not sep:
                continue
            if key == "bind-address":
                value = self.address
            elif value.startswith("/"):
                value = str(self.file(value))
                Path(value).parent.mkdir(parents=True, exist_ok=True)
            options.append(f"--{key}={value}")
        return (*options, "--port=3306")

    def stop(self) -> None:
        self._thread.join(timeout=180)
        if self.server is not None:
            self.server.stop(timeout=10)
            self.server.release()
            self.server = None


class ScratchMachines:
    def __init__(self, base: Path, template: Path | None = None):
        need("mariadbd", "mariadb", "openssl")
        self.base, self.template = base, template
        self.booted: list[ScratchMachine] = []

    def boot(self, instance_id: int, user_data: str) -> ScratchMachine:
        machine = ScratchMachine(self.base, instance_id, user_data, self.template)
        self.booted.append(machine)
        return machine


@pytest.fixture
def scratch_cloud(mariadb_template, monkeypatch) -> Iterator[FakeLinode]:
    """The Linode API fake with machines behind it, where drctl finds it (LINODE_TOKEN,
    DRCTL_LINODE_BASE_URL), and a state directory of its own; every machine stopped afterwards."""
    base = Path(tempfile.mkdtemp(prefix="wcdr-scr-"))  # short: unix sockets allow 107 bytes
    machines = ScratchMachines(base, mariadb_template)
    try:
        with FakeLinode(machines=machines) as fake:
            monkeypatch.setenv("LINODE_TOKEN", fake.token)
            monkeypatch.setenv("DRCTL_LINODE_BASE_URL", fake.base_url)
            monkeypatch.setenv("DRCTL_STATE_DIR", str(base / "state"))
            yield fake
    finally:
        shutil.rmtree(base, ignore_errors=True)
    failed = [m.failure for m in machines.booted if m.failure is not None]
    assert not failed, f"a scratch machine did not boot: {failed[0]!r}"
