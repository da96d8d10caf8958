"""Reading the MySQL Linodes of a program run: their user data and their computed addresses."""

from __future__ import annotations

import base64
import gzip
import json

import yaml

from components import mysql_cloud_init as ci
from drctl.plan.engine import Registration, unwrap


def cloud_config(instance: Registration) -> dict:
    text = base64.b64decode(unwrap(instance.inputs["metadatas"])[0]["userData"]).decode()
    assert text.startswith("#cloud-config\n")
    return yaml.safe_load(text)


def written(instance: Registration, path: str) -> str:
    entry = next(f for f in cloud_config(instance)["write_files"] if f["path"] == path)
    if entry.get("encoding") == "gz+b64":
        return gzip.decompress(base64.b64decode(entry["content"])).decode()
    return entry["content"]


def bootstrap(instance: Registration) -> dict:
    return json.loads(written(instance, ci.BOOTSTRAP_CONFIG))


def public_ip(registration: Registration) -> str:
    return next(ip for ip in registration.outputs["ipv4s"] if not ip.startswith("192.168."))
