import time, json
import pytest
from drctl.promote import PromoteOptions, promote
from drctl.failback import FailbackOptions, failback
from drctl.runbook import Refused
from tests.fake_linode import FakeLinode
from tests.runbook_support import FakeTraffic, OrderWriter, Shop, order_ids, wait_caught_up, REGIONS, app_insert
from drctl import replication as r
import contextlib

def test_scratch(mariadb_pair, tmp_path):
    with FakeLinode() as linode:
        shop = Shop.build(list(mariadb_pair), tmp_path, linode, rpo_seconds=1)
        traffic = FakeTraffic(REGIONS[:2])
        rb = shop.runbook(traffic)
        A, B = shop["us-east"], shop["eu-west"]
        for i in range(1, 11): app_insert(A, i)
        wait_caught_up(A, B)
        with contextlib.closing(B.connect()) as c:
            r.stop_io_thread(c, r.Dialect.MARIADB)
        time.sleep(1.5)
        for i in range(11, 16): app_insert(A, i)
        A.kill()
        try:
            res = promote(rb, PromoteOptions(region="eu-west", yes=True))
        except Refused as e:
            print("REFUSED", e)
        res = promote(rb, PromoteOptions(region="eu-west", yes=True, accept_data_loss=True))
        print("\n".join(shop.said)); shop.said.clear()
        print(res.render())
        assert res.outcome == "done", res.message
        print(sorted(order_ids(B)))
        print(linode.firewalls)
        A.start()
        app_insert(A, 99) if False else None
        try:
            res = failback(rb, FailbackOptions(to="us-east", yes=True))
            print(res.render())
        except Refused as e:
            print("REFUSED", e)
        print("\n".join(shop.said)); shop.said.clear()
        res = failback(rb, FailbackOptions(to="us-east", yes=True, discard_errant=True))
        print("\n".join(shop.said)); shop.said.clear()
        print(res.render())
        for f in (tmp_path / "state" / "errant").glob("*.json"):
            print(f.read_text()[:3000])
        assert res.outcome == "done"
        print(sorted(order_ids(A)), traffic.state())
