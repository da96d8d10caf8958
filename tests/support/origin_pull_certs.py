"""A test CA standing in for the stack's origin-pull CA (components/origin_pulls.py), and the client
certificates a test presents to nginx: the zone's own (what Cloudflare presents for our zone) and
one from a CA nginx does not trust (Cloudflare's shared certificate, another zone's, anyone's)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.binaries import need


@dataclass(frozen=True)
class ClientCertificate:
    certificate: Path
    key: Path


@dataclass(frozen=True)
class OriginPullCerts:
    ca: Path  # what the node's origin-pull-ca.pem holds
    zone: ClientCertificate  # signed by `ca`: Cloudflare pulling for this zone
    stranger: ClientCertificate  # signed by another CA: any other client with a certificate


def _ca(openssl: str, directory: Path, name: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}-ca.key", directory / f"{name}-ca.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", f"/O=woocommerce-dr tests/CN={name} origin-pull CA",
                    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
                   check=True, capture_output=True)
    return cert, key


def _client(openssl: str, directory: Path, name: str, ca: tuple[Path, Path]) -> ClientCertificate:
    key, csr, cert = directory / f"{name}.key", directory / f"{name}.csr", directory / f"{name}.pem"
    extensions = directory / f"{name}.ext"
    extensions.write_text("keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n")
    subprocess.run([openssl, "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
                    "-subj", f"/CN={name}"], check=True, capture_output=True)
    subprocess.run([openssl, "x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
                    "-CAcreateserial", "-days", "2", "-out", str(cert), "-extfile", str(extensions)],
                   check=True, capture_output=True)
    return ClientCertificate(cert, key)


def make_origin_pull_certs(directory: Path) -> OriginPullCerts:
    openssl = need("openssl")["openssl"]
    directory.mkdir(parents=True, exist_ok=True)
    ours, theirs = _ca(openssl, directory, "zone"), _ca(openssl, directory, "stranger")
    return OriginPullCerts(ca=ours[0], zone=_client(openssl, directory, "cloudflare-for-our-zone", ours),
                           stranger=_client(openssl, directory, "someone-else", theirs))
