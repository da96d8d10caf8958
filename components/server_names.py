"""The DNS names of the stack's MySQL Linodes: `mysql-<region>.db.<domain>`.

Each server's certificate names it (its IP does not exist yet when the certificate goes into its
user data), and replication verifies that name (`SOURCE_SSL_VERIFY_SERVER_CERT=1`), so every
server must be able to resolve every peer's name at any time: after `drctl promote` the replicas
follow the promoted server by name, after `drctl failback` the old primary follows the current
one. The database tier publishes the names as DNS-only A records in the shop's Cloudflare zone.

Why under the configured domain: the zone's apex is not in the stack config (only `zoneId`), and
the domain (`shop.example.com`, `dr-test.shop.example.com`) is always inside the zone, is unique to
the stack (it is the load balancer's name), and never equals one of these names, so a load
balancer cannot shadow them.

Plain Python, no Pulumi: config validation refuses a domain that makes a name too long.
"""

from __future__ import annotations

# RFC 1035: 63 octets per label; 255 octets on the wire is 253 characters written out.
MAX_LABEL = 63
MAX_NAME = 253
# X.509's upper bound for a subject common name (RFC 5280 ub-common-name).
MAX_COMMON_NAME = 64


def server_name(domain: str, region: str) -> str:
    """The name of the MySQL Linode in `region`: in its certificate, its DNS record, and what its
    peers put in CHANGE REPLICATION SOURCE."""
    return f"mysql-{region}.db.{domain}"


def common_name(name: str) -> str:
    """The certificate subject's common name: the server name when it fits X.509's 64 characters,
    else its first label. Clients verify the subject alternative name, which always holds the
    whole name; a longer common name would make some TLS libraries refuse the certificate."""
    return name if len(name) <= MAX_COMMON_NAME else name.split(".", 1)[0]


def name_problem(domain: str, regions: tuple[str, ...]) -> str | None:
    """Why the server names for these regions cannot exist in DNS, or None when they can."""
    names = [server_name(domain, region) for region in regions]
    for name in names:
        long_label = next((label for label in name.split(".") if len(label) > MAX_LABEL), None)
        if long_label:
            return f"the database server name {name!r} has a label over {MAX_LABEL} characters ({long_label!r})"
    longest = max(names, key=len, default="")
    if len(longest) > MAX_NAME:
        region = regions[names.index(longest)]
        return (f"the database server name mysql-{region}.db.<domain> would be {len(longest)} characters, "
                f"over DNS's {MAX_NAME}")
    return None


def longest_domain(regions: tuple[str, ...]) -> int:
    """How long the domain may be so every region's server name fits in DNS."""
    return MAX_NAME - max(len(server_name("", region)) for region in regions)
