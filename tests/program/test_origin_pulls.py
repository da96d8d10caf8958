"""Authenticated Origin Pulls under the mock engine: the stack's own origin-pull CA and client
certificate, the certificate uploaded as the zone's, both zone switches on after it, and the CA (only
the CA) on every web node, where nginx verifies Cloudflare's connections with it."""

import pytest
import yaml

from components import web_node
from drctl.plan.engine import Secret, unwrap
from tests.support import harness
from tests.support.web_tier_runs import INSTANCE, user_data, web_run

COMPONENT = "woocommerce-dr:index:OriginPulls"
UPLOAD = "cloudflare:index/authenticatedOriginPullsCertificate:AuthenticatedOriginPullsCertificate"
ZONE_PULLS = "cloudflare:index/authenticatedOriginPullsSettings:AuthenticatedOriginPullsSettings"
ZONE_SETTING = "cloudflare:index/zoneSetting:ZoneSetting"
CA = "tls:index/selfSignedCert:SelfSignedCert"
CLIENT = "tls:index/locallySignedCert:LocallySignedCert"
KEY = "tls:index/privateKey:PrivateKey"


@pytest.fixture(scope="module", params=["prod", "dr-test", "three-regions"])
def run(request):
    return web_run(request.param)


def zone_id(run) -> str:
    return harness.raw_config(run.stack.stack)["traffic"]["zoneId"]


def written(instance) -> dict[str, dict]:
    text = web_node.decode_user_data(user_data(instance))
    return {f["path"]: f for f in yaml.safe_load(text)["write_files"]}


def test_one_client_certificate_is_uploaded_as_the_zones_own_with_its_key_secret(run):
    [upload] = run.of_type(UPLOAD)
    assert upload.inputs["zoneId"] == zone_id(run)
    client = run.one(CLIENT, "origin-pulls-client")
    assert upload.plain("certificate") == client.outputs["certPem"]
    assert isinstance(upload.inputs["privateKey"], Secret)
    assert unwrap(upload.inputs["privateKey"]) == unwrap(run.one(KEY, "origin-pulls-client-key").outputs["privateKeyPem"])


def test_the_client_certificate_is_signed_by_the_stacks_own_ca_for_client_auth(run):
    ca = run.one(CA, "origin-pulls-ca")
    client = run.one(CLIENT, "origin-pulls-client")
    assert ca.inputs["isCaCertificate"] is True
    assert client.plain("caCertPem") == ca.outputs["certPem"]
    assert "client_auth" in client.inputs["allowedUses"]
    # Renewed by any `pulumi up` in its last year, long before Cloudflare would present it expired.
    assert client.inputs["earlyRenewalHours"] < client.inputs["validityPeriodHours"]
    assert client.inputs["validityPeriodHours"] < ca.inputs["validityPeriodHours"]


def test_zone_level_pulls_are_switched_on_in_the_zone_after_the_upload(run):
    [upload] = run.of_type(UPLOAD)
    [zone_pulls] = run.of_type(ZONE_PULLS)
    assert (zone_pulls.inputs["zoneId"], zone_pulls.inputs["enabled"]) == (zone_id(run), True)
    [setting] = [s for s in run.of_type(ZONE_SETTING) if s.inputs["settingId"] == "tls_client_auth"]
    assert (setting.inputs["zoneId"], setting.inputs["value"]) == (zone_id(run), "on")
    assert upload.urn in zone_pulls.depends_on
    assert upload.urn in setting.depends_on


def test_every_web_node_gets_the_ca_and_nothing_secret_of_the_origin_pulls(run):
    ca_pem = run.one(CA, "origin-pulls-ca").outputs["certPem"]
    client_key = unwrap(run.one(KEY, "origin-pulls-client-key").outputs["privateKeyPem"])
    ca_key = unwrap(run.one(KEY, "origin-pulls-ca-key").outputs["privateKeyPem"])
    instances = run.of_type(INSTANCE)
    assert instances
    for instance in instances:
        files = written(instance)
        ca_file = files[web_node.ORIGIN_PULL_CA_PATH]
        assert (ca_file["content"], ca_file["permissions"]) == (ca_pem, "0644")
        text = web_node.decode_user_data(user_data(instance))
        assert client_key not in text and ca_key not in text


def test_nginx_verifies_clients_against_the_file_the_nodes_get(run):
    site = written(run.of_type(INSTANCE)[0])["/etc/nginx/sites-available/woocommerce"]["content"]
    assert f"ssl_client_certificate {web_node.ORIGIN_PULL_CA_PATH};" in site
    # The old trust in the NodeBalancers' shared network is gone.
    assert "set_real_ip_from" not in site and "real_ip_header" not in site


def test_the_component_holds_the_whole_origin_pull_setup(run):
    component = run.one(COMPONENT, "origin-pulls")
    assert {r.name for r in run.children(component.urn)} == {
        "origin-pulls-ca-key", "origin-pulls-ca", "origin-pulls-client-key", "origin-pulls-client-csr",
        "origin-pulls-client", "origin-pulls-certificate", "origin-pulls-tls-client-auth", "origin-pulls-zone",
    }
