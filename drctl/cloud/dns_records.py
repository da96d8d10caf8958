"""The shop's DNS records in dns-failover mode: which region they point at, and repointing them.

The Pulumi program creates one proxied A record (and an AAAA record when the NodeBalancers have
IPv6) for the domain, pointing at the primary region's NodeBalancer, and leaves their content to
drctl afterwards. A region is identified by its NodeBalancer addresses from the stack outputs.
Shared by `drctl watch` and the runbook commands (status, promote, failback in dns mode).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from drctl.cloud.cloudflare import BatchResult, CloudflareApi, DnsRecord
from drctl.stack.outputs import OutputsError, StackOutputs


@dataclass(frozen=True)
class RegionAddresses:
    region: str
    ipv4: str
    ipv6: str | None  # without the prefix length Linode reports ("2600:3c03::1/128")

    def address_for(self, record_type: str) -> str | None:
        return {"A": self.ipv4, "AAAA": self.ipv6}.get(record_type)


def region_addresses(outputs: StackOutputs) -> list[RegionAddresses]:
    """Every region's NodeBalancer addresses, in failover order (primary first)."""
    return [
        RegionAddresses(r.region, r.node_balancer.ipv4,
                        r.node_balancer.ipv6.split("/")[0] if r.node_balancer.ipv6 else None)
        for r in outputs.regions
    ]


def same_address(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return False
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)  # "2600::0:1" is "2600::1"
    except ValueError:
        return a == b


@dataclass(frozen=True)
class RecordSet:
    """The A/AAAA records as read, and the regions they point at."""

    records: tuple[DnsRecord, ...]
    regions: tuple[RegionAddresses, ...]

    def region_of(self, record: DnsRecord) -> str | None:
        for r in self.regions:
            if same_address(r.address_for(record.type), record.content):
                return r.region
        return None

    @property
    def region(self) -> str | None:
        """Where traffic goes: the A record's region (the AAAA's when there is no A record)."""
        ordered = sorted(self.records, key=lambda rec: rec.type != "A")
        return self.region_of(ordered[0]) if ordered else None

    def by_type(self) -> dict[str, str | None]:
        return {rec.type: self.region_of(rec) for rec in self.records}

    def patches_to(self, region: str) -> list[dict[str, Any]]:
        """Batch patches pointing every record at `region`; empty when all already do."""
        target = next(r for r in self.regions if r.region == region)
        patches = []
        for rec in self.records:
            wanted = target.address_for(rec.type)
            if wanted is None:
                raise OutputsError(f"region {region} has no address for the {rec.type} record {rec.id} "
                                   f"(its NodeBalancer has no {'IPv6' if rec.type == 'AAAA' else 'IPv4'} address)")
            if not same_address(wanted, rec.content):
                patches.append(rec.patch(wanted))
        return patches


@dataclass
class DnsFailover:
    api: CloudflareApi
    zone_id: str
    domain: str
    record_ids: tuple[str, ...]
    regions: tuple[RegionAddresses, ...]

    @classmethod
    def from_outputs(cls, outputs: StackOutputs, api: CloudflareApi) -> DnsFailover:
        require_dns_mode(outputs)
        return cls(api, outputs.cloudflare.zone_id, outputs.domain, tuple(outputs.cloudflare.dns_record_ids),
                   tuple(region_addresses(outputs)))

    def read(self) -> RecordSet:
        """One request: the records of the domain's name, picked by id (a record renamed by hand
        is still found, with one more request)."""
        named = {r.id: r for r in self.api.list_dns_records(self.zone_id, name=self.domain)}
        records = [named.get(i) or self.api.get_dns_record(self.zone_id, i) for i in self.record_ids]
        return RecordSet(tuple(records), self.regions)

    def point_to(self, region: str, current: RecordSet, *, deletes: Iterable[str] = (),
                 posts: Iterable[Mapping[str, Any]] = ()) -> tuple[RecordSet, BatchResult | None]:
        """Repoint every record at `region` in one all-or-nothing request, or do nothing if they
        already point there. `current` must be fresh (just read): it is what the write assumes.
        `deletes`/`posts` ride in the same transaction (the watchdog's lease: if another holder
        replaced it, the whole batch fails and no record moves)."""
        patches = current.patches_to(region)
        if not patches:
            return current, None
        done = self.api.batch_dns(self.zone_id, deletes=deletes, patches=patches, posts=posts)
        changed = {r.id: r for r in done.patches}
        return RecordSet(tuple(changed.get(r.id, r) for r in current.records), current.regions), done


def require_dns_mode(outputs: StackOutputs) -> None:
    """Raise OutputsError unless the stack's traffic goes through repointable DNS records."""
    if outputs.traffic_mode != "dns-failover":
        raise OutputsError(
            f"stack {outputs.stack!r} uses traffic mode {outputs.traffic_mode!r} (allowed: 'dns-failover'): there "
            "the Cloudflare load balancer moves traffic itself; DNS records are only repointed in dns-failover mode"
        )
    if not outputs.cloudflare.dns_record_ids:
        raise OutputsError(f"stack {outputs.stack!r}: drctl.cloudflare.dnsRecordIds is empty, "
                           "no DNS record to repoint")
    # The contract lists the A record, then the AAAA record: every region must be able to take both.
    if len(outputs.cloudflare.dns_record_ids) > 1:
        missing = [r.region for r in outputs.regions if not r.node_balancer.ipv6]
        if missing:
            raise OutputsError(f"stack {outputs.stack!r} has an AAAA record but the NodeBalancer of "
                               f"{', '.join(missing)} has no IPv6 address to point it at")
