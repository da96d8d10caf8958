"""A local HAProxy process and its runtime API: the load balancers of `drctl rehearse`.

`HAProxyProcess` runs `haproxy -db -f haproxy.cfg` in the foreground (no daemon to lose track of),
after `haproxy -c` has checked the configuration, and waits until the runtime socket answers.

`RuntimeAPI` speaks HAProxy's runtime API over the unix socket the configuration declares with
`stats socket PATH level admin`: one command per connection, as the manual describes. It reads
server states from `show stat` (what the health checks concluded, and which servers are backups)
and changes them with `set server BACKEND/SERVER state ready|drain|maint`, verifying that the admin
state stuck, since the runtime API answers most mistakes with a message rather than an error code.
"""

from __future__ import annotations

import csv
import io
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from drctl.local import binaries, processes

SERVER_STATES = ("ready", "drain", "maint")


class HAProxyError(Exception):
    """HAProxy would not start, or the runtime API refused a command; the message says which."""


@dataclass(frozen=True)
class ServerStat:
    """One server line of `show stat`."""

    backend: str
    server: str
    status: str  # UP, DOWN, MAINT, DRAIN, NOLB, "UP 1/3" (going down), "DOWN 1/2" (going up), "no check"
    backup: bool
    check_status: str  # L4OK, L7OK, L4CON, L7STS, L4TOUT, ... ('' without checks)
    last_change_seconds: int | None
    address: str

    @property
    def up(self) -> bool:
        """Takes traffic as far as its checks go: UP, or UP but failing (not yet `fall` times)."""
        return self.status.startswith("UP") or self.status == "no check"

    @property
    def checked_up(self) -> bool:
        """Up in HAProxy's view, and a health check has run: HAProxy takes a server for up before
        its first check (check status INI), which Cloudflare's monitor would not. After leaving
        maintenance HAProxy keeps the server up with its last check's result until the next check:
        up is what counts."""
        return self.up and self.check_status not in ("", "INI")

    @property
    def in_maintenance(self) -> bool:
        return self.status.startswith("MAINT")


class RuntimeAPI:
    def __init__(self, socket_path: str | Path, timeout: float = 5.0):
        self.socket_path = str(socket_path)
        self.timeout = timeout

    def command(self, line: str) -> str:
        if "\n" in line or ";" in line:
            raise ValueError("one runtime API command at a time")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(self.timeout)
            try:
                sock.connect(self.socket_path)
            except OSError as err:
                raise HAProxyError(f"HAProxy runtime API at {self.socket_path} unreachable ({err.strerror})") from None
            sock.sendall(line.encode("ascii") + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode("utf-8", errors="replace")

    # --- reading -------------------------------------------------------------------------------
    def stats(self) -> list[dict[str, str]]:
        """`show stat` as one dict per line, keyed by the CSV header (without its leading '# ')."""
        text = self.command("show stat")
        if not text.startswith("# "):
            raise HAProxyError(f"unexpected answer to 'show stat': {text.strip()[:200]}")
        return list(csv.DictReader(io.StringIO(text[2:])))

    def servers(self, backend: str | None = None) -> list[ServerStat]:
        found = []
        for row in self.stats():
            if row["svname"] in ("FRONTEND", "BACKEND") or (backend and row["pxname"] != backend):
                continue
            found.append(ServerStat(
                backend=row["pxname"], server=row["svname"], status=row["status"], backup=row["bck"] == "1",
                check_status=row.get("check_status", ""),
                last_change_seconds=int(row["lastchg"]) if row.get("lastchg") else None,
                address=row.get("addr", ""),
            ))
        if backend and not found:
            raise HAProxyError(f"HAProxy has no backend {backend!r} with servers")
        return found

    def server(self, backend: str, server: str) -> ServerStat:
        for stat in self.servers(backend):
            if stat.server == server:
                return stat
        raise HAProxyError(f"HAProxy backend {backend!r} has no server {server!r}")

    def admin_states(self, backend: str) -> dict[str, int]:
        """`show servers state BACKEND`: each server's admin-state bit field (0 = ready; bit 0x01
        forced maintenance, 0x08 forced drain), which is what `set server ... state` changes."""
        text = self.command(f"show servers state {backend}")
        lines = [line for line in text.splitlines() if line and not line.startswith("#")]
        if not lines or not lines[0].strip().isdigit():
            raise HAProxyError(f"unexpected answer to 'show servers state {backend}': {text.strip()[:200]}")
        states = {}
        for line in lines[1:]:
            fields = line.split()
            states[fields[3]] = int(fields[6])  # srv_name, srv_admin_state
        return states

    # --- changing ------------------------------------------------------------------------------
    def set_server_state(self, backend: str, server: str, state: str) -> None:
        if state not in SERVER_STATES:
            raise ValueError(f"server state must be one of {', '.join(SERVER_STATES)} (got {state!r})")
        answer = self.command(f"set server {backend}/{server} state {state}").strip()
        if answer:  # success is silence; anything said is a refusal ("No such server.")
            raise HAProxyError(f"HAProxy refused to set {backend}/{server} to {state}: {answer}")
        admin = self.admin_states(backend).get(server)
        forced = {"ready": 0, "maint": 0x01, "drain": 0x08}[state]
        if admin is None or (admin & 0x09) != forced:
            raise HAProxyError(f"{backend}/{server} did not change to {state} (admin state {admin})")

    def add_acl_entry(self, acl_file: str | Path, entry: str) -> None:
        """Add an entry to a file-backed ACL (`acl ... -f FILE` in the configuration), in memory."""
        self._silent(f"add acl {acl_file} {entry}", f"add {entry} to ACL {acl_file}")

    def clear_acl(self, acl_file: str | Path) -> None:
        self._silent(f"clear acl {acl_file}", f"clear ACL {acl_file}")

    def shutdown_sessions(self, backend: str, server: str) -> None:
        """Cut every established connection through a server."""
        self._silent(f"shutdown sessions server {backend}/{server}", f"cut the sessions of {backend}/{server}")

    def _silent(self, line: str, what: str) -> None:
        answer = self.command(line).strip()
        if answer and not answer.lower().startswith("done"):
            raise HAProxyError(f"HAProxy refused to {what}: {answer}")


class HAProxyProcess:
    """One haproxy process running `config` from `directory/haproxy.cfg`."""

    def __init__(self, directory: Path, config: str, socket_path: Path):
        self.binary = binaries.find("haproxy")["haproxy"]
        self.directory = Path(directory)
        self.config_path = self.directory / "haproxy.cfg"
        self.log_path = self.directory / "haproxy.log"
        self.config = config
        self.api = RuntimeAPI(socket_path)
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 15) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config, encoding="utf-8")
        check = subprocess.run([self.binary, "-c", "-q", "-f", str(self.config_path)],
                               capture_output=True, text=True, check=False)
        if check.returncode != 0:
            raise HAProxyError(f"HAProxy rejected {self.config_path}:\n{(check.stderr or check.stdout).strip()}")
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([self.binary, "-db", "-f", str(self.config_path)],
                                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        processes.wait_until_ready(self.process, self._answers, timeout, "haproxy", self.log_path, HAProxyError)

    def _answers(self) -> bool:
        try:
            self.api.command("show info")
            return True
        except HAProxyError:
            return False

    def stop(self, timeout: float = 10) -> None:
        processes.terminate(self.process, timeout)
        self.process = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        return processes.log_tail(self.log_path, lines)
