"""Scratch Linodes for `drctl restore --target linode[:REGION]` and `drctl drill --restore`: a
database server of the archive's family (MySQL 8 or MariaDB, on Ubuntu 24.04) made through the
Linode API (drctl/cloud/linode.py), restored into over verified TLS, found again by its label.

What drctl makes, and why each piece is as it is:
- **A Cloud Firewall first** (inbound DROP, MySQL 3306 only from the addresses given: the stack's
  `access.operatorCidrs` and `--allow-from`), then the Linode with `firewall_id`: there is never a
  moment when the new server is reachable from anywhere else. No SSH rule, no SSH key: nobody logs in.
- **Labels and tags that find leftovers**: the Linode's label is `drctl-restore-<stack>-<moment>`
  (the restore point, or `drill`), its tags `drctl-restore`, `stack:<stack>` and `created:<time>`;
  the firewall's label derives from the Linode's (Cloud Firewall labels are at most 32 characters).
  A second run finds its Linode by label and carries on instead of making another.
- **TLS with a one-use CA**: drctl makes a CA for this server alone and sends its key in the user
  data (as the stack's own database servers get their keys); the server certifies its own public
  addresses with it at boot and deletes the key (scratch_templates/scratch-tls.sh). drctl verifies
  the chain to that CA *and* the address, as any client verifying identity does.
- **A random password**, made here, sent in the user data (the account's SQL, deleted once run) and
  kept on this machine only in a 0600 client file under the state directory
  (`$DRCTL_STATE_DIR/<stack>/scratch/<label>/`, beside the CA certificate): never printed, never in
  a message or a report.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import ipaddress
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from drctl.backup.restore import RestoreError, Target
from drctl.cloud.linode import LinodeAPI, LinodeAPIError
from drctl.mysql import replication
from drctl.runbook.journal import state_dir

TEMPLATES = Path(__file__).with_name("scratch_templates")
SCRATCH_TAG = "drctl-restore"
IMAGE = "linode/ubuntu24.04"
DEFAULT_TYPE = "g6-standard-2"
PORT = 3306
USER = "drctl_restore"
SERVER_ID = 4_000_000_002  # never a shop server's id: a restored binlog keeps the originals
SERVER_DIR = "/etc/mysql/drctl-scratch"  # under /etc/mysql: Ubuntu's AppArmor profile of mysqld reads no other /etc
LINODE_TYPE = re.compile(r"^g\d-[a-z0-9-]+$")  # the pattern components/config.py holds types to
REGION = re.compile(r"^[a-z]{2}-[a-z]+(-\d+)?$")
LABEL_LIMIT = 64
FIREWALL_LABEL_LIMIT = 32

# The database server family of each archive: the packages, the service and the settings file.
FAMILIES = {
    "mysql": {"name": "MySQL 8.0", "packages": ["mysql-server", "mysql-client"], "service": "mysql",
              "settings": "/etc/mysql/mysql.conf.d/zz-drctl-scratch.cnf"},
    "mariadb": {"name": "MariaDB 10.11", "packages": ["mariadb-server", "mariadb-client"], "service": "mariadb",
                "settings": "/etc/mysql/mariadb.conf.d/zz-drctl-scratch.cnf"},
}


class ScratchError(RestoreError):
    """A scratch Linode cannot be made, found, reached or deleted; the message says what to do."""


def linode_type(text: str) -> str:
    if not LINODE_TYPE.fullmatch(text):
        raise ValueError(f"not a Linode type (got {text!r}; allowed: a Linode plan id such as g6-standard-2)")
    return text


def region_id(text: str) -> str:
    if not REGION.fullmatch(text):
        raise ValueError(f"not a Linode region (got {text!r}; allowed: a region id such as us-east or eu-west)")
    return text


def scratch_label(stack: str, moment: str) -> str:
    """`drctl-restore-<stack>-<moment>` within Linode's label rules (letters, digits, - _ . and no two
    of them in a row); refused, never cut, when too long: a cut label could name another restore."""
    text = re.sub(r"[^A-Za-z0-9]+", "-", f"drctl-restore-{stack}-{moment}").strip("-")
    if len(text) > LABEL_LIMIT:
        raise ScratchError(f"the scratch Linode's label {text!r} is {len(text)} characters (allowed: at most "
                           f"{LABEL_LIMIT}); the stack name is too long for it")
    return text


def moment_label(to_time: dt.datetime | None, to_gtid: object | None) -> str:
    """The restore point as a label part: a time, a MariaDB GTID, or a MySQL GTID with the first
    8 hex digits of its server uuid (the whole uuid would not fit a label beside the stack name)."""
    if to_time is not None:
        return f"{to_time:%Y%m%dT%H%M%SZ}"
    server, colon, number = str(to_gtid).rpartition(":")
    return f"gtid-{server[:8]}-{number}" if colon else f"gtid-{to_gtid}"


def firewall_label(label: str) -> str:
    return f"drctl-rs-{hashlib.sha256(label.encode()).hexdigest()[:16]}"


def allowed_sources(operator_cidrs: Sequence[str], allow_from: Sequence[str]) -> list[str]:
    nets: list[str] = []
    for cidr in [*operator_cidrs, *allow_from]:
        net = str(ipaddress.ip_network(cidr, strict=False))
        if net not in nets:
            nets.append(net)
    return nets


@dataclass(frozen=True)
class ScratchRequest:
    stack: str
    label: str
    region: str
    type: str
    family: str  # a key of FAMILIES: the archive's flavour ("mariadb" or "mysql", RestorePlan.flavour)
    sources: tuple[str, ...]  # who may reach 3306: operator networks, --allow-from

    def describe(self) -> str:
        return (f"Linode {self.label} ({self.type}, {self.region}, {IMAGE}, {FAMILIES[self.family]['name']}) behind "
                f"firewall {firewall_label(self.label)} admitting MySQL {PORT} from {', '.join(self.sources)} only")


# --- what goes to the new machine -------------------------------------------------------------------

@dataclass(frozen=True)
class Secrets:
    password: str
    ca_pem: str
    ca_key_pem: str

    @classmethod
    def generate(cls, label: str) -> Secrets:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"drctl scratch CA for {label}"[:64])])
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=30))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .sign(key, hashes.SHA256()))
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
        # URL-safe letters only: nothing to escape in SQL, in a client option file or a shell.
        return cls(secrets.token_urlsafe(24), cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem)


def server_settings(family: str) -> str:
    lines = ["[mysqld]", "bind-address = 0.0.0.0", "require_secure_transport = ON",
             f"ssl_ca = {SERVER_DIR}/ca.pem", f"ssl_cert = {SERVER_DIR}/server-cert.pem",
             f"ssl_key = {SERVER_DIR}/server-key.pem", f"server_id = {SERVER_ID}", "skip_name_resolve = ON",
             "max_allowed_packet = 1073741824"]
    if family == "mysql":
        # Replayed MySQL binlogs carry their GTIDs (SET GTID_NEXT): the server must run with GTIDs.
        lines += ["log_bin = binlog", "gtid_mode = ON", "enforce_gtid_consistency = ON"]
    else:
        # The restore reads the position reached off the target's own binlog (gtid_binlog_pos).
        lines += ["log_bin = /var/log/mysql/mariadb-bin", "binlog_format = ROW"]
    return "\n".join(lines) + "\n"


def account_sql(password: str) -> str:
    return (f"CREATE USER IF NOT EXISTS '{USER}'@'%' IDENTIFIED BY '{password}' REQUIRE SSL;\n"
            f"GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'%' WITH GRANT OPTION;\n")


def cloud_config(request: ScratchRequest, keys: Secrets) -> str:
    family = FAMILIES[request.family]

    def file(path: str, content: str, permissions: str = "0644", defer: bool = False) -> dict[str, Any]:
        entry: dict[str, Any] = {"path": path, "content": content, "permissions": permissions, "owner": "root:root"}
        if defer:  # after the packages: the package's first start must not see settings without certificates
            entry["defer"] = True
        return entry

    doc = {
        "package_update": True,
        "packages": family["packages"],
        "timezone": "Etc/UTC",
        "write_files": [
            file(f"{SERVER_DIR}/ca.pem", keys.ca_pem),
            file(f"{SERVER_DIR}/ca-key.pem", keys.ca_key_pem, "0600"),
            file(f"{SERVER_DIR}/account.sql", account_sql(keys.password), "0600"),
            file(f"{SERVER_DIR}/service", family["service"] + "\n"),
            file(family["settings"], server_settings(request.family), defer=True),
            file("/usr/local/sbin/drctl-scratch-tls", (TEMPLATES / "scratch-tls.sh").read_text(), "0755"),
            file("/usr/local/sbin/drctl-scratch-setup", (TEMPLATES / "scratch-setup.sh").read_text(), "0755"),
        ],
        "runcmd": [["/usr/local/sbin/drctl-scratch-setup"]],
    }
    return "#cloud-config\n" + yaml.safe_dump(doc, sort_keys=False, width=1000)


def firewall_spec(request: ScratchRequest, created: str) -> dict[str, Any]:
    ipv4 = [c for c in request.sources if ipaddress.ip_network(c).version == 4]
    ipv6 = [c for c in request.sources if ipaddress.ip_network(c).version == 6]
    addresses: dict[str, list[str]] = {}
    if ipv4:
        addresses["ipv4"] = ipv4
    if ipv6:
        addresses["ipv6"] = ipv6
    return {"label": firewall_label(request.label), "tags": tags(request, created),
            "rules": {"inbound_policy": "DROP", "outbound_policy": "ACCEPT", "outbound": [],
                      "inbound": [{"label": "mysql-from-drctl", "action": "ACCEPT", "protocol": "TCP",
                                   "ports": str(PORT), "addresses": addresses}]}}


def instance_spec(request: ScratchRequest, keys: Secrets, firewall_id: int, created: str) -> dict[str, Any]:
    user_data = base64.b64encode(cloud_config(request, keys).encode()).decode()
    return {"label": request.label, "region": request.region, "type": request.type, "image": IMAGE,
            # Linode wants a root password for an image; nobody ever uses it (no SSH is admitted).
            "root_pass": secrets.token_urlsafe(32), "booted": True, "firewall_id": firewall_id,
            "tags": tags(request, created), "metadata": {"user_data": user_data}}


def tags(request: ScratchRequest, created: str) -> list[str]:
    return [SCRATCH_TAG, f"stack:{request.stack}"[:50], f"created:{created}"]


# --- what stays on this machine ---------------------------------------------------------------------

def scratch_dir(stack: str, label: str) -> Path:
    return state_dir(stack) / "scratch" / label


def _private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def save_secrets(where: Path, keys: Secrets) -> None:
    where.mkdir(parents=True, exist_ok=True, mode=0o700)
    where.chmod(0o700)
    (where / "ca.pem").write_text(keys.ca_pem, encoding="utf-8")
    _private(where / "client.cnf", f"[client]\nuser={USER}\npassword={keys.password}\n")


@dataclass(frozen=True)
class ScratchServer:
    """A scratch Linode that answers: where it is and how to reach its database."""

    label: str
    instance_id: int
    firewall_id: int | None
    address: str
    family: str
    files: Path  # the 0600 client file (user and password) and the CA certificate

    @property
    def client_file(self) -> Path:
        return self.files / "client.cnf"

    @property
    def ca_file(self) -> Path:
        return self.files / "ca.pem"

    def password(self) -> str:
        for line in self.client_file.read_text(encoding="utf-8").splitlines():
            if line.startswith("password="):
                return line[len("password="):]
        raise ScratchError(f"{self.client_file} holds no password: delete the scratch Linode {self.label} and restore "
                           "again")

    def tls_args(self) -> tuple[str, ...]:
        if self.family == "mysql":
            return (f"--ssl-ca={self.ca_file}", "--ssl-mode=VERIFY_IDENTITY")
        return (f"--ssl-ca={self.ca_file}", "--ssl-verify-server-cert")

    def client_args(self) -> tuple[str, ...]:
        # The option file first (the clients insist), so the password is never on a command line.
        return (f"--defaults-extra-file={self.client_file}", f"--host={self.address}", f"--port={PORT}",
                *self.tls_args())

    def connect(self, timeout: float = 10):
        return replication.connect(self.address, PORT, USER, self.password(), ssl_ca=str(self.ca_file),
                                   connect_timeout=timeout)

    def target(self) -> Target:
        return Target(self.client_args(), self.connect, f"scratch Linode {self.label} ({self.address})")

    def how_to_connect(self) -> str:
        client = "mysql" if self.family == "mysql" else "mariadb"
        return (f"connect with: {client} {' '.join(self.client_args())}  (user {USER}; its password is in "
                f"{self.client_file}, mode 0600, on this machine only)")


# --- lifecycle ---------------------------------------------------------------------------------------

def public_address(instance: dict[str, Any]) -> str | None:
    for ip in instance.get("ipv4") or ():
        if not ipaddress.ip_address(ip).is_private or ipaddress.ip_address(ip).is_loopback:
            return ip
    return None


def ensure_scratch(api: LinodeAPI, request: ScratchRequest, say: Callable[[str], None], *,
                   replace_unusable: bool = False) -> tuple[dict[str, Any], bool]:
    """The scratch Linode of `request`, made if it does not exist yet: (instance, whether it was
    there already). Made firewall first; when the Linode cannot be made, the firewall made for it
    is deleted again, so a refusal (quota, a region without the type, a token without the scope)
    leaves nothing behind. A Linode of that label this machine has no credentials for is refused,
    or, with `replace_unusable` (the drill's own scratch), deleted and made again."""
    files = scratch_dir(request.stack, request.label)
    found = api.instance_by_label(request.label)
    if found is not None and replace_unusable and not (files / "client.cnf").is_file():
        say(f"scratch Linode {request.label} of an earlier run has no credentials on this machine: replacing it")
        delete_scratch(api, request.stack, request.label, say)
        found = None
    if found is not None:
        if not (files / "client.cnf").is_file():
            raise ScratchError(f"a Linode labelled {request.label} exists but this machine holds no credentials for it "
                               f"({files}): delete it with `drctl restore --delete-scratch {request.label} --yes` "
                               "and run again")
        say(f"found scratch Linode {request.label} (id {found['id']}) from an earlier run: carrying on with it")
        _admit(api, request)
        return found, True
    shutil.rmtree(files, ignore_errors=True)  # credentials of a Linode that is gone
    keys = Secrets.generate(request.label)
    created = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    firewall = _admit(api, request)
    if firewall is None:
        say(f"creating firewall {firewall_label(request.label)} (MySQL {PORT} from {', '.join(request.sources)})")
        firewall = api.create_firewall(firewall_spec(request, created))
    save_secrets(files, keys)
    say(f"creating scratch Linode {request.label} ({request.type} in {request.region}, {FAMILIES[request.family]['name']})")
    try:
        instance = api.create_instance(instance_spec(request, keys, int(firewall["id"]), created))
    except (LinodeAPIError, KeyboardInterrupt):
        with contextlib.suppress(LinodeAPIError):
            if api.instance_by_label(request.label) is None:
                api.delete_firewall(int(firewall["id"]))
                shutil.rmtree(files, ignore_errors=True)
        raise
    _write_record(files, request, instance, int(firewall["id"]), created)
    return instance, False


def _admit(api: LinodeAPI, request: ScratchRequest) -> dict[str, Any] | None:
    """The scratch's firewall when it exists, its rules set to admit this run's sources (a run from
    another address carries on with the same Linode)."""
    firewall = api.firewall_by_label(firewall_label(request.label))
    if firewall is not None:
        api.set_firewall_rules(int(firewall["id"]), firewall_spec(request, "")["rules"])
    return firewall


def _write_record(files: Path, request: ScratchRequest, instance: dict[str, Any], firewall_id: int, created: str) -> None:
    record = {"label": request.label, "instanceId": instance.get("id"), "firewallId": firewall_id,
              "region": request.region, "type": request.type, "family": request.family, "created": created}
    (files / "scratch.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def wait_until_ready(api: LinodeAPI, request: ScratchRequest, instance: dict[str, Any], say: Callable[[str], None], *,
                     timeout: float, poll: float = 10.0, clock: Callable[[], float] = time.monotonic,
                     sleep: Callable[[float], None] = time.sleep) -> ScratchServer:
    """Wait, with progress, until the Linode runs and then until its database answers over
    verified TLS with drctl's account (cloud-init installs the server: minutes). Polls every
    second at first, then less often, up to every `poll` seconds."""
    started = clock()
    instance_id = int(instance["id"])
    files = scratch_dir(request.stack, request.label)
    record = json.loads((files / "scratch.json").read_text()) if (files / "scratch.json").is_file() else {}
    last_said, status, problem, interval = -1e9, instance.get("status"), "not tried yet", 1.0
    while True:
        elapsed = clock() - started
        if status == "running":
            address = public_address(instance)
            if address is None:
                raise ScratchError(f"scratch Linode {request.label} runs but has no public IPv4 address")
            server = ScratchServer(request.label, instance_id, record.get("firewallId"), address, request.family, files)
            try:
                server.connect(timeout=5).close()
                say(f"scratch Linode {request.label} answers at {address}:{PORT} over verified TLS "
                    f"({elapsed:.0f} s)")
                return server
            except Exception as err:  # not up yet: cloud-init is still installing, or restarting it
                problem = f"{type(err).__name__}: {str(err)[:120]}"
        if elapsed > timeout:
            raise ScratchError(f"scratch Linode {request.label} did not answer within {timeout:.0f} s (status {status}; "
                               f"last: {problem}); delete it with `drctl restore --delete-scratch {request.label} "
                               "--yes` or run again to keep waiting")
        if elapsed - last_said >= 15:
            doing = "installing the database server" if status == "running" else f"Linode is {status}"
            say(f"waiting for scratch Linode {request.label}: {doing} ({elapsed:.0f} s)")
            last_said = elapsed
        sleep(interval)
        interval = min(poll, interval * 2)
        instance = api.instance(instance_id)
        status = instance.get("status")


def reset_database(server: ScratchServer) -> None:
    """A scratch found from an earlier run may hold part of a restore: empty it, binlog included,
    so the restore starts from nothing again."""
    with contextlib.closing(server.connect()) as conn, conn.cursor() as cur:
        cur.execute("SELECT schema_name FROM information_schema.schemata WHERE schema_name NOT IN "
                    "('mysql','information_schema','performance_schema','sys')")
        for (schema,) in list(cur.fetchall()):
            cur.execute(f"DROP DATABASE `{schema}`")  # names from the server itself
        cur.execute("RESET MASTER")


def delete_scratch(api: LinodeAPI, stack: str, label: str, say: Callable[[str], None]) -> bool:
    """Delete the Linode, its firewall and the local credentials; False when none of them existed."""
    found = False
    instance = api.instance_by_label(label)
    if instance is not None:
        say(f"deleting scratch Linode {label} (id {instance['id']})")
        api.delete_instance(int(instance["id"]))
        found = True
    firewall = api.firewall_by_label(firewall_label(label))
    if firewall is not None:
        say(f"deleting firewall {firewall['label']}")
        api.delete_firewall(int(firewall["id"]))
        found = True
    files = scratch_dir(stack, label)
    if files.exists():
        shutil.rmtree(files, ignore_errors=True)
        found = True
    return found


def list_scratch(api: LinodeAPI, stack: str) -> list[dict[str, Any]]:
    """The scratch Linodes of `stack` (tags drctl-restore and stack:<stack>)."""
    want = f"stack:{stack}"[:50]
    return [i for i in api.instances() if SCRATCH_TAG in (i.get("tags") or ()) and want in (i.get("tags") or ())]


@contextlib.contextmanager
def scratch_linode(api: LinodeAPI, request: ScratchRequest, say: Callable[[str], None], *, timeout: float,
                   keep: bool, poll: float = 10.0):
    """A ready scratch Linode for the block: (ScratchServer, restore Target). Deleted on the way out
    (an exception or Ctrl-C included) unless `keep`."""
    failed = True
    try:
        instance, existed = ensure_scratch(api, request, say, replace_unusable=not keep)
        server = wait_until_ready(api, request, instance, say, timeout=timeout, poll=poll)
        if existed:
            reset_database(server)
        yield server, server.target()
        failed = False
    finally:
        if not keep:
            try:
                _delete_through_one_ctrl_c(api, request, say)
            except LinodeAPIError as err:
                message = (f"could not delete scratch Linode {request.label}: {err}; delete it with `drctl restore "
                           f"--delete-scratch {request.label} --yes`")
                say(message)
                if not failed:  # never hide the error that brought us here
                    raise ScratchError(message) from None


def _delete_through_one_ctrl_c(api: LinodeAPI, request: ScratchRequest, say: Callable[[str], None]) -> None:
    """A Ctrl-C is often what brought us here, and a second one comes quickly: the first during the
    deletion is answered by deleting anyway (each API call has its deadline), the next one is obeyed."""
    try:
        delete_scratch(api, request.stack, request.label, say)
    except KeyboardInterrupt:
        say(f"interrupted while deleting scratch Linode {request.label}: deleting it anyway (it costs money while it "
            f"exists); Ctrl-C again leaves it, then delete it with `drctl restore --delete-scratch {request.label} "
            "--yes`")
        delete_scratch(api, request.stack, request.label, say)
