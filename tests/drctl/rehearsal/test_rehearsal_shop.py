"""The rehearsal's shop origin answers /healthz as the web nodes' healthz.php does, and takes
orders only where the database is writable."""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
from wsgiref.simple_server import make_server

import pytest

from drctl.drill import orders
from drctl.mysql import replication
from drctl.rehearsal.shop import _QuietHandler, _Server, application

pytestmark = pytest.mark.integration


@pytest.fixture
def shop(mariadb_server):
    mariadb_server.create_user("shop", "shop-pw", "ALL PRIVILEGES ON *.*")
    with contextlib.closing(mariadb_server.connect()) as conn:
        replication.install_heartbeat(conn, with_event=False)
        orders.create_schema(conn)
    settings = {"origin": "us-east-web-1", "port": 0, "region": "us-east", "host": "127.0.0.1",
                "port_db": mariadb_server.port, "user": "shop", "password": "shop-pw", "ca_file": mariadb_server.tls.ca}
    server = make_server("127.0.0.1", 0, application(settings), server_class=_Server,
                         handler_class=_QuietHandler)  # port 0: the kernel picks, the server holds it
    settings["port"] = server.server_port
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield mariadb_server, settings["port"]
    server.shutdown()
    server.server_close()


def call(port, method, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request(method, path, headers={"Content-Length": "0"})
    response = conn.getresponse()
    return response.status, json.loads(response.read())


def test_healthz_says_primary_and_takes_orders_on_a_writable_database(shop):
    _, port = shop
    assert call(port, "GET", "/healthz") == (200, {"region": "us-east", "db_role": "primary", "db_reachable": True,
                                                   "replica_lag_seconds": None})
    assert call(port, "POST", "/orders?seq=7") == (201, {"seq": 7, "region": "us-east", "origin": "us-east-web-1"})


def test_a_read_only_database_is_a_healthy_replica_that_refuses_orders(shop):
    server, port = shop
    server.execute("SET GLOBAL read_only = ON")
    status, body = call(port, "GET", "/healthz")
    assert status == 200 and body["db_role"] == "replica" and body["replica_lag_seconds"] >= 0
    status, body = call(port, "POST", "/orders?seq=8")
    assert status == 503 and body["error"] == "OrderRejected"


def test_an_unreachable_database_is_a_503_that_names_no_host_or_error(shop):
    server, port = shop
    server.kill()
    assert call(port, "GET", "/healthz") == (503, {"region": "us-east", "db_role": None, "db_reachable": False,
                                                   "replica_lag_seconds": None})
