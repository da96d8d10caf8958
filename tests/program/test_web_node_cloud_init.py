"""What a web node is told to become: its cloud-init user data, taken from the instances the web tier
registers, checked with the tools that will read it (cloud-init, shellcheck, php) and for the values
each node must get."""

import base64
import json
import re
import subprocess

import pytest
import yaml

from components import web_node
from drctl.plan.engine import Secret, contains_secret
from tests.support.binaries import require
from tests.support.web_tier_runs import INSTANCE, in_region, run_with, user_data, web_run


def cloud_config(instance) -> dict:
    text = web_node.decode_user_data(user_data(instance))
    assert text.startswith("#cloud-config\n")
    return yaml.safe_load(text)


def files(instance) -> dict[str, dict]:
    return {f["path"]: f for f in cloud_config(instance)["write_files"]}


def node_env(instance) -> dict[str, str]:
    lines = files(instance)["/etc/woocommerce-dr/node.env"]["content"].splitlines()
    return dict(line.split("=", 1) for line in lines)


@pytest.fixture(scope="module")
def prod():
    return web_run("prod")


@pytest.fixture(scope="module")
def three_regions():
    return web_run("three-regions")


def test_user_data_reaches_the_provider_only_as_a_secret(prod):
    for instance in prod.of_type(INSTANCE):
        assert isinstance(instance.inputs["metadatas"][0]["userData"], Secret)


def test_database_password_appears_nowhere_but_in_secrets(prod):
    def plain_strings(value):
        if isinstance(value, Secret):
            return
        if isinstance(value, dict):
            for v in value.values():
                yield from plain_strings(v)
        elif isinstance(value, list):
            for v in value:
                yield from plain_strings(v)
        elif isinstance(value, str):
            yield value

    for resource in prod.resources:
        for text in plain_strings(resource.inputs):
            assert "db-password-" not in text, resource.name
    assert contains_secret(prod.outputs["wordpressAdminPassword"])


def test_user_data_is_a_cloud_config_that_cloud_init_accepts(prod, tmp_path):
    cloud_init = require("cloud-init")
    for instance in prod.of_type(INSTANCE):
        path = tmp_path / f"{instance.name}.yaml"
        path.write_text(web_node.decode_user_data(user_data(instance)))
        result = subprocess.run([cloud_init, "schema", "-c", str(path)], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Valid cloud-config" in result.stdout


def test_generated_shell_scripts_pass_shellcheck(prod, tmp_path):
    shellcheck = require("shellcheck")
    scripts = [f for f in files(prod.one(INSTANCE, "us-east-web-0")).values() if f["content"].startswith("#!/bin/bash")]
    assert {f["path"] for f in scripts} == {
        "/usr/local/sbin/woocommerce-dr-bootstrap", "/usr/local/sbin/woocommerce-dr-wp-cron",
        "/usr/local/sbin/woocommerce-dr-rotation",
    }
    for script in scripts:
        path = tmp_path / script["path"].rsplit("/", 1)[1]
        path.write_text(script["content"])
        result = subprocess.run([shellcheck, "--shell=bash", str(path)], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout
    # The settings the scripts source are plain shell assignments too.
    env = tmp_path / "node.env"
    env.write_text("#!/bin/sh\n" + files(prod.one(INSTANCE, "us-east-web-0"))["/etc/woocommerce-dr/node.env"]["content"])
    subprocess.run([shellcheck, "--exclude=SC2034", str(env)], check=True)


def test_php_files_parse(prod, tmp_path):
    php = require("php")
    php_files = [f for f in files(prod.one(INSTANCE, "us-east-web-0")).values() if f["path"].endswith(".php")]
    assert len(php_files) == 9  # no media mu-plugin here: tests/program/test_media_storage.py lints it
    for f in php_files:
        path = tmp_path / f["path"].rsplit("/", 1)[1]
        path.write_text(f["content"])
        subprocess.run([php, "-l", str(path)], check=True, capture_output=True)


def test_each_region_points_wordpress_at_its_own_database_endpoint(prod):
    for region, port in (("us-east", 3306), ("eu-west", 3307)):
        for instance in in_region(prod, INSTANCE, region):
            written = files(instance)
            database = json.loads(written["/etc/woocommerce-dr/database.json"]["content"])
            assert database == {
                "region": region, "host": f"db-{region}.test.invalid", "port": port, "user": "woocommerce",
                "password": f"db-password-{region}", "database": "woocommerce",
                "ca_file": "/etc/woocommerce-dr/database-ca.pem", "rpo_seconds": 15,
            }
            assert written["/etc/woocommerce-dr/database-ca.pem"]["content"] == (
                f"-----BEGIN CERTIFICATE-----\nCA-{region}\n-----END CERTIFICATE-----\n"
            )


def test_healthz_judges_replica_lag_against_the_stacks_rpo():
    run = run_with(objectives={"rtoSeconds": 300, "rpoSeconds": 42})
    for instance in run.of_type(INSTANCE):
        assert json.loads(files(instance)["/etc/woocommerce-dr/database.json"]["content"])["rpo_seconds"] == 42


def test_credentials_are_readable_by_php_and_root_only(prod):
    written = files(prod.one(INSTANCE, "us-east-web-0"))
    for path in ("/etc/woocommerce-dr/database.json", "/etc/woocommerce-dr/wordpress.json"):
        assert (written[path]["owner"], written[path]["permissions"]) == ("root:www-data", "0640")
    for path in ("/etc/woocommerce-dr/site-admin.env", "/etc/ssl/woocommerce-dr/origin.key"):
        assert (written[path]["owner"], written[path]["permissions"]) == ("root:root", "0600")


def test_wordpress_is_served_at_https_domain_with_the_same_keys_everywhere(three_regions):
    site_files = [json.loads(files(i)["/etc/woocommerce-dr/wordpress.json"]["content"])
                  for i in three_regions.of_type(INSTANCE)]
    assert len(site_files) == 5
    assert {s["home"] for s in site_files} == {"https://shop.example.com"}
    keys = site_files[0]["keys"]
    assert sorted(keys) == sorted(web_node.WORDPRESS_KEY_NAMES)
    assert all(len(value) == 64 for value in keys.values())
    assert all(s["keys"] == keys for s in site_files)


def test_only_the_primary_regions_first_node_installs_the_site(three_regions):
    installers = [i.name for i in three_regions.of_type(INSTANCE) if node_env(i)["INSTALL_SITE"] == "yes"]
    assert installers == ["us-east-web-0"]
    with_admin = [i.name for i in three_regions.of_type(INSTANCE) if "/etc/woocommerce-dr/site-admin.env" in files(i)]
    assert with_admin == ["us-east-web-0"]


def test_wordpress_cron_runs_on_exactly_one_node_per_region(three_regions):
    for region in ("us-east", "eu-west", "ap-south"):
        cron_nodes = [i.name for i in in_region(three_regions, INSTANCE, region) if node_env(i)["RUN_CRON"] == "yes"]
        assert cron_nodes == [f"{region}-web-0"]
    wp_config = files(three_regions.one(INSTANCE, "eu-west-web-1"))["/usr/local/share/woocommerce-dr/wp-config.php"]
    assert "define('DISABLE_WP_CRON', true);" in wp_config["content"]


def test_nginx_serves_the_origin_certificate_the_node_is_given(prod):
    written = files(prod.one(INSTANCE, "eu-west-web-0"))
    site = written["/etc/nginx/sites-available/woocommerce"]["content"]
    certificate = re.search(r"ssl_certificate (\S+);", site).group(1)
    key = re.search(r"ssl_certificate_key (\S+);", site).group(1)
    origin = prod.one("cloudflare:index/originCaCertificate:OriginCaCertificate", "eu-west-origin-certificate")
    private_key = prod.one("tls:index/privateKey:PrivateKey", "eu-west-origin-key")
    assert written[certificate]["content"] == origin.outputs["certificate"]
    assert written[key]["content"] == private_key.outputs["privateKeyPem"].value


def test_plain_http_redirects_to_https_except_healthz(prod):
    site = files(prod.one(INSTANCE, "us-east-web-0"))["/etc/nginx/sites-available/woocommerce"]["content"]
    port_80 = site.split("server {")[1]
    assert "include snippets/woocommerce-dr-healthz.conf;" in port_80
    assert "return 301 https://$host$request_uri;" in port_80
    snippet = files(prod.one(INSTANCE, "us-east-web-0"))["/etc/nginx/snippets/woocommerce-dr-healthz.conf"]
    assert "location = /healthz" in snippet["content"]
    assert "fastcgi_param SCRIPT_FILENAME /usr/local/share/woocommerce-dr/healthz.php;" in snippet["content"]


def test_every_file_a_script_or_config_names_is_written_or_installed_by_the_bootstrap(prod):
    written = files(prod.one(INSTANCE, "us-east-web-0"))
    bootstrap = written["/usr/local/sbin/woocommerce-dr-bootstrap"]["content"]
    for name in ("wp-config.php", "db.php"):
        assert f'"$SHARE/{name}"' in bootstrap and f"/usr/local/share/woocommerce-dr/{name}" in written
    assert "/etc/systemd/system/woocommerce-dr-wp-cron.timer" in written
    assert "systemctl enable --now woocommerce-dr-wp-cron.timer" in bootstrap
    assert cloud_config(prod.one(INSTANCE, "us-east-web-0"))["runcmd"] == [["/usr/local/sbin/woocommerce-dr-bootstrap"]]


def test_user_data_carries_no_timestamp_so_an_unchanged_node_shows_no_diff():
    node = web_node.WebNode(
        region="us-east", domain="shop.example.com",
        database=web_node.DatabaseSettings("db", 3306, "u", "p", "woocommerce", "CA"),
        wordpress_keys=dict.fromkeys(web_node.WORDPRESS_KEY_NAMES, "k"),
        origin_certificate_pem="C", origin_private_key_pem="K", run_cron=False, rpo_seconds=15,
        origin_pull_ca_pem="A",
    )
    compressed = base64.b64decode(web_node.user_data(node))
    assert compressed[:2] == b"\x1f\x8b"  # gzip, which cloud-init unpacks
    assert compressed[4:8] == bytes(4)  # gzip's MTIME field: zero, not the time of rendering
