"""The web tier for real: a web node's files, rendered by the real program, served by real nginx +
PHP-FPM + WordPress (Debian's `nginx`, `php-fpm`, `wordpress` packages) against real MariaDB
servers over TLS that the database tier's own bootstrap set up.

    def test_something(web_primary):
        response = web_primary.get("/healthz")            # plain HTTP, as the NodeBalancer checks
        response = web_primary.get("/", https=True)       # the shop, TLS ended by nginx

How a stack is made, step by step, as a node does it:
1. `pulumi up` under the mock engine (the `dr-test` stack: self-managed MySQL, one web node per
   region) renders every Linode's user data; `rendered_files()` reads its `write_files`.
2. The database servers (tests/support/mariadb.py) run `drctl.mysql.bootstrap` with the
   `bootstrap.json` their user data carries: the primary creates the shop's schema and accounts,
   the replica seeds itself and replicates (`web_stack_databases`).
3. A web node's files are laid below a sandbox directory (`Sandbox`), WordPress is put in place as
   the node's bootstrap does (`install_wordpress` mirrors woocommerce-dr-bootstrap), and nginx and
   PHP-FPM start as unprivileged processes on reserved loopback ports with their own pid, log and
   temp paths in the sandbox.

What must differ in a sandbox is rewritten in ONE place, `SandboxRewrites` below (absolute paths,
listen addresses, the database's address and CA, the origin certificate, file owners); everything
else is served byte for byte as the program rendered it. A rewrite that no longer matches the
rendered files fails the fixture, so a template change cannot silently leave the tier testing
something else.

Processes run as `www-data` when the tests run as root (as PHP-FPM's pool does on a node, so the
rendered owners and modes are exercised), else as the current user. With `CI` set a missing binary
fails (tests/support/binaries.py).
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import pwd
import re
import shutil
import signal
import ssl
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import web_node
from drctl.local.ports import PortPool
from drctl.mysql import bootstrap as boot
from drctl.plan.engine import ProgramRun, unwrap
from tests.support.binaries import need
from tests.support.mariadb import MariaDBCluster, MariaDBServer
from tests.support.origin_pull_certs import make_origin_pull_certs
from tests.support.waiting import wait_until

INSTANCE = "linode:index/instance:Instance"
STACK = "dr-test"  # self-managed MySQL: the database servers' setup is ours and runs here for real
PRIMARY_REGION, REPLICA_REGION = "us-east", "eu-west"
WORDPRESS = Path("/usr/share/wordpress")  # Debian's `wordpress` package
NGINX_ETC = Path("/etc/nginx")  # Debian's `nginx` package: fastcgi_params, snippets/fastcgi-php.conf
SITE_TITLE, ADMIN_USER, ADMIN_PASSWORD = "Web stack test shop", "shopadmin", "web-stack-admin-pw"
DOMAIN = "dr-test.shop.example.com"  # the dr-test stack's woocommerce-dr:domain


# --- what the program rendered ----------------------------------------------------------------------


def rendered_files(run: ProgramRun, instance: str) -> dict[str, dict[str, Any]]:
    """path on the node -> cloud-init write_files entry, from the instance's user data as the
    provider would receive it (web nodes gzip it, database servers do not)."""
    encoded = unwrap(run.one(INSTANCE, instance).inputs["metadatas"][0]["userData"])
    raw = base64.b64decode(encoded)
    text = web_node.decode_user_data(encoded) if raw[:2] == b"\x1f\x8b" else raw.decode()
    return {f["path"]: f for f in yaml.safe_load(text)["write_files"]}


# --- the one place where the sandbox differs from a node --------------------------------------------


@dataclass
class SandboxRewrites:
    """Everything a sandbox changes in the rendered files, and why. `apply_text` fails when a
    rewrite matches nothing: the templates changed and this table must follow."""

    root: Path
    ports: dict[int, int]  # node port -> loopback port (80, 443, and 8390: the media bucket server)
    used: set[str] = field(default_factory=set)

    # Absolute directories of a node, moved below the sandbox root.
    NODE_PATHS = ("/etc/woocommerce-dr", "/usr/local/share/woocommerce-dr", "/var/www/woocommerce",
                  "/etc/ssl/woocommerce-dr", "/var/log/nginx", "/var/lib/woocommerce-dr")
    # The PHP-FPM socket: Ubuntu's php-fpm package links /run/php/php-fpm.sock; ours is the sandbox's.
    FPM_SOCKET = "/run/php/php-fpm.sock"

    def path(self, node_path: str) -> Path:
        return self.root / node_path.lstrip("/")

    def text_rules(self) -> list[tuple[str, str, Callable[[re.Match], str]]]:
        """(name, pattern, replacement) for every laid text file."""
        rules = [(f"path {p}", re.escape(p), lambda m, p=p: str(self.path(p))) for p in self.NODE_PATHS]
        rules.append(("php-fpm socket", re.escape(self.FPM_SOCKET), lambda m: str(self.root / "run/php-fpm.sock")))
        # Loopback ports instead of 80/443 on every address; no IPv6 listener (the ports are
        # reserved on 127.0.0.1 only).
        rules.append(("nginx IPv6 listen", r"^\s*listen \[::\]:\d+[^;]*;\n", lambda m: ""))
        rules.append(("nginx listen", r"listen (80|443)\b",
                      lambda m: f"listen 127.0.0.1:{self.ports[int(m.group(1))]}"))
        # The rotation agent's settings (rotation.env): the same ports, and /livez on the sandbox's port.
        rules.append(("rotation probe", r"^PROBE_URL=http://127\.0\.0\.1/livez$",
                      lambda m: f"PROBE_URL=http://127.0.0.1:{self.ports[80]}/livez"))
        rules.append(("rotation ports", r"^PORTS='443, 80'$",
                      lambda m: f"PORTS='{self.ports[443]}, {self.ports[80]}'"))
        # nginx's bucket fallback (nginx-media.conf) and the media agent's /healthz (media.json).
        rules.append(("media bucket server", r"127\.0\.0\.1:8390\b", lambda m: f"127.0.0.1:{self.ports[8390]}"))
        rules.append(("media agent healthz", r'"http://127\.0\.0\.1/healthz"',
                      lambda m: f'"http://127.0.0.1:{self.ports[80]}/healthz"'))
        return rules

    def apply_text(self, text: str) -> str:
        for name, pattern, replacement in self.text_rules():
            text, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
            if count:
                self.used.add(name)
        return text

    def check_all_used(self) -> None:
        unused = {name for name, _, _ in self.text_rules()} - self.used
        assert not unused, f"sandbox rewrites that matched no rendered file: {sorted(unused)}"

    @staticmethod
    def database(settings: dict[str, Any], server: MariaDBServer, ca_file: Path) -> dict[str, Any]:
        """database.json: the test server's address instead of the database's DNS name (the node's
        /etc/hosts line is not laid), and the file holding the test CA. Account and schema stay."""
        return {**settings, "host": server.host, "port": server.port, "ca_file": str(ca_file)}

    @staticmethod
    def bootstrap(settings: dict[str, Any], server: MariaDBServer, status_dir: Path,
                  source: MariaDBServer | None) -> dict[str, Any]:
        """A database server's bootstrap.json: its socket and status file here; accounts admitted
        from 127.0.0.1 instead of the private network; the source at its test address."""
        doc = json.loads(json.dumps(settings))
        doc["socket"] = server.socket
        doc["statusFile"] = str(status_dir / Path(doc["statusFile"]).name)
        for account in ("admin", "app", "replication"):
            if account in doc:
                doc[account]["host"] = server.host
        if source is not None:
            doc["source"].update(host=source.host, port=source.port, caFile=str(source.tls.ca))
            doc["waitForSourceSeconds"] = 20
        return doc

    @staticmethod
    def owner(node_path: str, owner: str) -> str:
        """The origin key is root's on a node, read by nginx's master as root; here nginx runs as
        the unprivileged service user and must read it itself."""
        return "www-data:root" if node_path == "/etc/ssl/woocommerce-dr/origin.key" else owner


# --- processes ----------------------------------------------------------------------------------------


def need_installed(path: Path, package: str) -> Path:
    """A file a Debian package installs (not a binary): fail under CI, else skip, naming the package."""
    if not path.exists():
        message = f"needs {path} (apt-get install {package})"
        if os.environ.get("CI"):
            pytest.fail(f"{message}: CI must install it (.ci/run)", pytrace=False)
        pytest.skip(message)
    return path


def php_fpm_binary() -> str:
    """Debian names PHP-FPM by version (php-fpm8.2; Ubuntu 24.04: php-fpm8.3)."""
    for directory in ("/usr/sbin", "/usr/bin"):
        found = sorted(Path(directory).glob("php-fpm[0-9]*"))
        if found:
            return str(found[-1])
    return need("php-fpm8.2")["php-fpm8.2"]


def service_user() -> pwd.struct_passwd:
    if os.geteuid() == 0:
        return pwd.getpwnam("www-data")
    return pwd.getpwuid(os.geteuid())


def _as_service_user() -> dict[str, Any]:
    user = service_user()
    if os.geteuid() != 0:
        return {}
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def _chown(path: Path, owner: str) -> None:
    if os.geteuid() != 0:
        return
    user, _, group = owner.partition(":")
    shutil.chown(path, user, group or None)


def _stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: str

    def json(self) -> Any:
        return json.loads(self.body)


class WebStack:
    """One web node: its rendered files in a sandbox, served by nginx + PHP-FPM + WordPress."""

    def __init__(self, files: dict[str, dict[str, Any]], database: MariaDBServer):
        binaries = need("nginx")
        need_installed(WORDPRESS / "wp-settings.php", "wordpress")
        need_installed(WORDPRESS / "wp-content/themes/twentytwentythree", "wordpress-theme-twentytwentythree")
        self.nginx_binary = binaries["nginx"]
        self.php_fpm_binary = php_fpm_binary()
        self.php_binary = need("php")["php"]
        self.database = database
        self.root = Path(tempfile.mkdtemp(prefix="wcdr-web-"))
        self.root.chmod(0o755)  # the service user walks into it
        self._ports = PortPool()
        self.http_port, self.https_port = self._ports.port(), self._ports.port()
        # Where nginx finds the region's bucket on a local miss; nothing answers there unless a test
        # starts the bucket server (tests/support/web_stack_media.py): then a miss is a 404, as with
        # the bucket unreachable.
        self.media_port = self._ports.port()
        self.rewrites = SandboxRewrites(self.root, {80: self.http_port, 443: self.https_port, 8390: self.media_port})
        self.files = files
        self.nginx: subprocess.Popen | None = None
        self.php_fpm: subprocess.Popen | None = None
        # The media agent's state and the delete spool, www-data's as media_storage.RUNCMD makes them.
        for directory in ("run", "log", "var/lib/nginx", "var/log/nginx", "var/lib/woocommerce-dr/media",
                          "var/lib/woocommerce-dr/media/deletes"):
            self._dir(directory, "www-data:www-data")
        self._lay_files()
        self._origin_certificate()
        self.install_wordpress()

    # --- laying out ---------------------------------------------------------------------------------
    def path(self, node_path: str) -> Path:
        return self.rewrites.path(node_path)

    @property
    def etc(self) -> Path:
        return self.path(web_node.ETC)

    @property
    def docroot(self) -> Path:
        return self.path("/var/www/woocommerce")

    def _dir(self, relative: str, owner: str = "root:root") -> Path:
        path = self.root / relative
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o755)
        _chown(path, owner)
        return path

    def _write(self, node_path: str, content: str, owner: str = "root:root", mode: str = "0644") -> Path:
        path = self.path(node_path)
        for parent in reversed(path.relative_to(self.root).parents[:-1]):
            if not (self.root / parent).exists():
                self._dir(str(parent))
        path.write_text(content)
        path.chmod(int(mode, 8))
        _chown(path, self.rewrites.owner(node_path, owner))
        return path

    def _lay_files(self) -> None:
        for node_path, entry in self.files.items():
            if entry.get("append"):  # /etc/hosts: the database's name is replaced by its address
                continue
            content = entry["content"]
            if node_path == f"{web_node.ETC}/database.json":
                ca_file = self.path(f"{web_node.ETC}/database-ca.pem")
                content = json.dumps(self.rewrites.database(json.loads(content), self.database, ca_file), indent=2)
            elif node_path == f"{web_node.ETC}/database-ca.pem":
                content = Path(self.database.tls.ca).read_text()  # the test servers' CA
            else:
                content = self.rewrites.apply_text(content)
            self._write(node_path, content, entry.get("owner", "root:root"), entry.get("permissions", "0644"))
        self.rewrites.check_all_used()
        # The rest of nginx's configuration comes from Debian's nginx package, as on a node.
        for name in ("fastcgi_params", "fastcgi.conf", "mime.types", "snippets/fastcgi-php.conf"):
            self._write(f"/etc/nginx/{name}", (NGINX_ETC / name).read_text())
        self._dir("etc/nginx/sites-enabled")
        (self.path("/etc/nginx/sites-enabled/woocommerce")).symlink_to(self.path("/etc/nginx/sites-available/woocommerce"))

    def _origin_certificate(self) -> None:
        """The program's origin certificate comes from Cloudflare's Origin CA (a mock value here):
        a self-signed one for 127.0.0.1 takes its place."""
        openssl = need("openssl")["openssl"]
        key, cert = self.path("/etc/ssl/woocommerce-dr/origin.key"), self.path("/etc/ssl/woocommerce-dr/origin.pem")
        subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                        "-addext", f"subjectAltName=IP:127.0.0.1,DNS:{DOMAIN}"], check=True, capture_output=True)
        key.chmod(0o600)
        _chown(key, self.rewrites.owner("/etc/ssl/woocommerce-dr/origin.key", "root:root"))
        self.origin_certificate = cert
        # The stack's origin-pull CA is a mock value too: a test CA takes its place, and requests
        # present its client certificate as Cloudflare does for the zone (request(client=...)).
        self.origin_pull = make_origin_pull_certs(self.root / "origin-pull")
        shutil.copyfile(self.origin_pull.ca, self.path(web_node.ORIGIN_PULL_CA_PATH))

    def install_wordpress(self) -> None:
        """What woocommerce-dr-bootstrap's install_wordpress() does, from Debian's WordPress instead
        of a download (WooCommerce is not available here): root owns the code, www-data the uploads,
        wp-config.php, the db.php drop-in and the read-only mode's must-use plugin installed from the
        shared folder."""
        # Hard links: the tree is 60 MB and PHP resolves __DIR__ through symlinks, so links would
        # make WordPress load Debian's own wp-config.php.
        def link(src: str, dst: str) -> None:
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)

        shutil.copytree(WORDPRESS, self.docroot, symlinks=True, copy_function=link, dirs_exist_ok=True)
        share = self.path(web_node.SHARE)
        (self.docroot / "wp-config.php").unlink()
        shutil.copyfile(share / "wp-config.php", self.docroot / "wp-config.php")
        (self.docroot / "wp-config.php").chmod(0o640)
        _chown(self.docroot / "wp-config.php", "root:www-data")
        shutil.copyfile(share / "db.php", self.docroot / "wp-content/db.php")
        (self.docroot / "wp-content/db.php").chmod(0o644)
        plugins = self.docroot / "wp-content/mu-plugins"
        plugins.mkdir(exist_ok=True)
        shutil.copyfile(share / "woocommerce-dr-read-only.php", plugins / "00-woocommerce-dr-read-only.php")
        (plugins / "00-woocommerce-dr-read-only.php").chmod(0o644)
        # The must-use plugins shipped with the node (the media agent's delete spool).
        for shipped in sorted((share / "mu-plugins").glob("*.php")):
            shutil.copyfile(shipped, plugins / shipped.name)
            (plugins / shipped.name).chmod(0o644)
        uploads = self.docroot / "wp-content/uploads"
        uploads.mkdir(exist_ok=True)
        _chown(uploads, "www-data:www-data")

    def add_mu_plugin(self, name: str, code: str) -> None:
        """A test's stimulus inside WordPress (a must-use plugin: loaded on every request, after
        the database connection): never part of what a node is given."""
        plugins = self.docroot / "wp-content/mu-plugins"
        plugins.mkdir(exist_ok=True)
        (plugins / f"{name}.php").write_text(code)
        (plugins / f"{name}.php").chmod(0o644)

    # --- running ------------------------------------------------------------------------------------
    def start(self) -> WebStack:
        self.start_php_fpm()
        self._start_nginx()
        return self

    def start_php_fpm(self) -> None:
        conf = self._write("/etc/php/fpm.conf", "\n".join([
            "[global]",
            f"pid = {self.root}/run/php-fpm.pid",
            f"error_log = {self.root}/log/php-fpm.log",
            "daemonize = no",
            "[www]",
            f"listen = {self.root}/run/php-fpm.sock",
            "pm = static",
            "pm.max_children = 4",
            "catch_workers_output = yes",
            "",
        ]))
        self.php_fpm = subprocess.Popen([self.php_fpm_binary, "--nodaemonize", "--fpm-config", str(conf)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **_as_service_user())
        socket_path = self.root / "run/php-fpm.sock"
        wait_until(lambda: socket_path.exists() or self.php_fpm.poll() is not None, 20, "PHP-FPM's socket")
        if self.php_fpm.poll() is not None:
            raise RuntimeError(f"php-fpm exited: {self.log('php-fpm.log')}")

    def stop_php_fpm(self) -> None:
        """What a node whose PHP-FPM died looks like to nginx."""
        _stop(self.php_fpm)
        self.php_fpm = None

    def _start_nginx(self) -> None:
        conf = self._write("/etc/nginx/nginx.conf", "\n".join([
            "daemon off;",
            "worker_processes 1;",
            f"pid {self.root}/run/nginx.pid;",
            f"error_log {self.root}/log/nginx-error.log info;",
            "events { worker_connections 64; }",
            "http {",
            "    include mime.types;",
            "    default_type application/octet-stream;",
            "    sendfile on;",
            f"    access_log {self.root}/log/nginx-access.log;",
            *(f"    {kind}_temp_path {self.root}/var/lib/nginx/{kind};"
              for kind in ("client_body", "fastcgi", "proxy", "uwsgi", "scgi")),
            "    include sites-enabled/*;",
            "}",
            "",
        ]))
        argv = [self.nginx_binary, "-p", str(self.root), "-c", str(conf), "-e", str(self.root / "log/nginx-error.log")]
        checked = subprocess.run([*argv, "-t"], capture_output=True, text=True, check=False, **_as_service_user())
        assert checked.returncode == 0, f"nginx -t refused the rendered configuration:\n{checked.stderr}"
        self.nginx = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **_as_service_user())
        wait_until(lambda: self._answers() or self.nginx.poll() is not None, 20, "nginx")
        if self.nginx.poll() is not None:
            raise RuntimeError(f"nginx exited: {self.log('nginx-error.log')}")

    def _answers(self) -> bool:
        try:
            self.get("/healthz", timeout=2)
            return True
        except OSError:
            return False

    def stop(self) -> None:
        _stop(self.nginx)
        _stop(self.php_fpm)
        self._ports.release()
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self, name: str) -> str:
        path = self.root / "log" / name
        return path.read_text(errors="replace") if path.exists() else ""

    # --- using ------------------------------------------------------------------------------------
    def get(self, path: str, https: bool = False, timeout: float = 30, **kwargs) -> Response:
        return self.request("GET", path, https=https, timeout=timeout, **kwargs)

    def request(self, method: str, path: str, https: bool = True, body: str | bytes | None = None,
                headers: dict[str, str] | None = None, timeout: float = 30,
                client: str | None = "zone") -> Response:
        """`client`: the TLS client certificate presented: "zone" (Cloudflare pulling for our zone,
        the default), "stranger" (one nginx does not trust) or None (none at all)."""
        host = headers.get("Host") if headers else None
        headers = {"Host": host or DOMAIN, **(headers or {})}
        if https:
            context = ssl.create_default_context(cafile=str(self.origin_certificate))
            if client is not None:
                presented = getattr(self.origin_pull, client)
                context.load_cert_chain(str(presented.certificate), str(presented.key))
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                "127.0.0.1", self.https_port, timeout=timeout, context=context)
        else:
            connection = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return Response(response.status, {k.lower(): v for k, v in response.getheaders()},
                            response.read().decode(errors="replace"))
        finally:
            connection.close()

    def php(self, code: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """php-cli as the service user, in the docroot (for what a node does with wp-cli)."""
        return subprocess.run([self.php_binary, "-r", code], cwd=self.docroot, capture_output=True, text=True,
                              timeout=timeout, check=False, **_as_service_user())

    def install_site(self) -> None:
        """What the primary region's first node does once: create-database.php, then `wp core
        install` (done with WordPress's own wp_install(); wp-cli is not packaged here)."""
        created = self.php(f"require {str(self.path(web_node.SHARE) / 'create-database.php')!r};")
        assert created.returncode == 0, created.stdout + created.stderr
        installed = self.php(
            "define('WP_INSTALLING', true); $_SERVER['HTTP_HOST'] = 'dr-test.shop.example.com';"
            "require 'wp-load.php'; require_once ABSPATH . 'wp-admin/includes/upgrade.php';"
            "if (!is_blog_installed()) {"
            f" $r = wp_install({SITE_TITLE!r}, {ADMIN_USER!r}, 'webmaster@example.com', true, '', {ADMIN_PASSWORD!r});"
            " if (is_wp_error($r)) { fwrite(STDERR, $r->get_error_message()); exit(1); } }"
        )
        assert installed.returncode == 0, installed.stdout + installed.stderr


# --- databases, set up by the database tier's own bootstrap -----------------------------------------


@dataclass
class WebStackDatabases:
    primary: MariaDBServer
    replica: MariaDBServer
    run: ProgramRun
    directory: Path

    def bootstrap_config(self, role: str) -> dict[str, Any]:
        region = PRIMARY_REGION if role == "primary" else REPLICA_REGION
        files = rendered_files(self.run, f"db-{role}-{region}")
        return json.loads(files["/etc/woocommerce-dr/bootstrap.json"]["content"])

    def bootstrap(self, role: str) -> int:
        server = self.primary if role == "primary" else self.replica
        source = self.primary if role == "replica" else None
        doc = SandboxRewrites.bootstrap(self.bootstrap_config(role), server, self.directory, source)
        return boot.run(boot.BootstrapConfig.from_dict(doc), log=lambda message: print(f"bootstrap {role}: {message}"))


@contextlib.contextmanager
def web_stack(files: dict[str, dict[str, Any]], database: MariaDBServer) -> Iterator[WebStack]:
    stack = WebStack(files, database)
    try:
        yield stack.start()
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def web_stack_run(dr_test_run) -> ProgramRun:
    """The stack whose files the tier serves (STACK, applied once per session: program_runs.py)."""
    return dr_test_run


@pytest.fixture(scope="module")
def web_stack_databases(web_stack_run, mariadb_ca, mariadb_template, tmp_path_factory) -> Iterator[WebStackDatabases]:
    """The stack's primary and its replica (started read-only, as mysql-replica.cnf has it), each
    set up by its rendered bootstrap.json; the replica replicates from the primary."""
    group = MariaDBCluster(mariadb_ca, mariadb_template)
    try:
        primary = group.add()
        replica = group.add(extra_args=("--read-only",))
        databases = WebStackDatabases(primary, replica, web_stack_run, tmp_path_factory.mktemp("bootstrap-status"))
        assert databases.bootstrap("primary") == boot.EXIT_OK
        yield databases
    finally:
        group.close()


@pytest.fixture(scope="module")
def web_primary(web_stack_run, web_stack_databases) -> Iterator[WebStack]:
    """The primary region's first web node, with the site installed."""
    with web_stack(rendered_files(web_stack_run, f"{PRIMARY_REGION}-web-0"), web_stack_databases.primary) as stack:
        stack.install_site()
        yield stack


@pytest.fixture(scope="module")
def web_replica(web_primary, web_stack_run, web_stack_databases) -> Iterator[WebStack]:
    """The DR region's web node on the replica, which the replica's bootstrap seeded from the
    primary after the site was installed there."""
    assert web_stack_databases.bootstrap("replica") == boot.EXIT_OK
    with web_stack(rendered_files(web_stack_run, f"{REPLICA_REGION}-web-0"), web_stack_databases.replica) as stack:
        yield stack
