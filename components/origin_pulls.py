"""Authenticated Origin Pulls: the origins serve the shop to Cloudflare pulling for this zone, nobody else.

The NodeBalancers admit Cloudflare's addresses only, but those are every Cloudflare customer's: anyone
can point a zone of their own at our NodeBalancer's IP and reach the shop around our Cloudflare
settings (WAF, rate limits, the fallback page) with a CF-Connecting-IP of their choosing. With
Authenticated Origin Pulls Cloudflare presents a client certificate on every TLS connection to the
origin, and nginx on the web nodes serves the shop only to a client whose certificate it verifies.

Cloudflare offers one shared origin-pull certificate for every zone, but that proves "some Cloudflare
zone", the very hole above. So the stack makes its own: a CA, a client certificate it signs, uploaded
as this zone's zone-level certificate; the nodes get the CA (public) in their user data and trust
nothing else. Both private keys stay in the stack's secrets (the client key also in Cloudflare).

docs/origin-security.md has the whole picture: what still reaches a node without the certificate
(/healthz, for the monitors and `drctl watch`; the NodeBalancer's TCP checks) and how to rotate.
"""

from __future__ import annotations

import pulumi
import pulumi_cloudflare as cloudflare
import pulumi_tls as tls

# Cloudflare keeps presenting an expired client certificate, and nginx answers 400 to one: the CA and
# the certificate live long, and any `pulumi up` in the client certificate's last year replaces it
# (upload the new one, then delete the old: Cloudflare's order for a change without downtime).
CA_VALIDITY_HOURS = 20 * 365 * 24
CLIENT_VALIDITY_HOURS = 10 * 365 * 24
CLIENT_EARLY_RENEWAL_HOURS = 365 * 24


class OriginPulls(pulumi.ComponentResource):
    """The zone's origin-pull client certificate and CA, and zone-level Authenticated Origin Pulls on."""

    ca_certificate_pem: pulumi.Output[str]
    certificate_id: pulumi.Output[str]

    def __init__(self, name: str, zone_id: str, domain: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__("woocommerce-dr:index:OriginPulls", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # RSA: what Cloudflare's documentation shows for uploaded origin-pull certificates.
        ca_key = tls.PrivateKey(f"{name}-ca-key", algorithm="RSA", rsa_bits=2048, opts=child)
        ca = tls.SelfSignedCert(
            f"{name}-ca", private_key_pem=ca_key.private_key_pem, is_ca_certificate=True,
            subject={"common_name": f"{domain} origin-pull CA", "organization": "woocommerce-dr"},
            validity_period_hours=CA_VALIDITY_HOURS, allowed_uses=["cert_signing", "crl_signing"], opts=child,
        )
        client_key = tls.PrivateKey(f"{name}-client-key", algorithm="RSA", rsa_bits=2048, opts=child)
        request = tls.CertRequest(
            f"{name}-client-csr", private_key_pem=client_key.private_key_pem,
            subject={"common_name": f"Cloudflare origin pull for {domain}", "organization": "woocommerce-dr"},
            opts=child,
        )
        client = tls.LocallySignedCert(
            f"{name}-client", cert_request_pem=request.cert_request_pem, ca_private_key_pem=ca_key.private_key_pem,
            ca_cert_pem=ca.cert_pem, validity_period_hours=CLIENT_VALIDITY_HOURS,
            early_renewal_hours=CLIENT_EARLY_RENEWAL_HOURS,
            allowed_uses=["digital_signature", "key_encipherment", "client_auth"], opts=child,
        )
        upload = cloudflare.AuthenticatedOriginPullsCertificate(
            f"{name}-certificate", zone_id=zone_id, certificate=client.cert_pem,
            private_key=client_key.private_key_pem, opts=child,
        )
        # Both switches of zone-level pulls, after the certificate is there: the zone's "Authenticated
        # Origin Pulls" toggle (setting tls_client_auth) and zone-level pulls with the uploaded
        # certificate (origin_tls_client_auth/settings).
        after_upload = pulumi.ResourceOptions(parent=self, depends_on=[upload])
        cloudflare.ZoneSetting(f"{name}-tls-client-auth", zone_id=zone_id, setting_id="tls_client_auth",
                               value="on", opts=after_upload)
        cloudflare.AuthenticatedOriginPullsSettings(f"{name}-zone", zone_id=zone_id, enabled=True,
                                                    opts=after_upload)

        self.ca_certificate_pem = ca.cert_pem
        self.certificate_id = upload.id
        self.register_outputs({"caCertificatePem": self.ca_certificate_pem, "certificateId": self.certificate_id})
