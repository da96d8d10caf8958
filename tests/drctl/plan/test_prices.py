"""The price list in the repo: its schema, its date, its sources, and the rules that keep a guess
out of it (a figure without a source, or without a figure at all, must say why)."""

from __future__ import annotations

import copy
import datetime
import json

import pytest

from drctl.plan.prices import (
    PRICE_LIST,
    PriceListError,
    load_price_list,
    parse_price_list,
    source_names,
    write_price_list,
)

RAW = json.loads(PRICE_LIST.read_text(encoding="utf-8"))


def test_the_repos_price_list_is_valid():
    prices = load_price_list()
    assert prices.currency == "USD"
    assert {"g6-nanode-1", "g6-standard-1", "g6-standard-2", "g6-dedicated-2"} <= set(prices.linode.instance_types)


def test_it_is_dated_by_its_least_recently_checked_part_and_not_in_the_future():
    prices = load_price_list()
    assert prices.date == min(prices.linode.checked, prices.cloudflare.checked)
    assert prices.date <= datetime.date.today()


def test_every_source_is_a_public_https_page_or_says_what_it_is_and_every_one_is_used():
    prices = load_price_list()
    for name, source in prices.sources.items():
        assert source.url is None or source.url.startswith("https://"), name
        assert source.found.strip(), name
    assert set(prices.sources) == set(source_names(RAW["linode"]) + source_names(RAW["cloudflare"])
                                      + source_names(RAW["free"]))


def test_every_free_kind_says_why():
    assert all(kind.why for kind in load_price_list().free.values())


def test_the_stacks_plans_are_in_the_list_with_their_transfer():
    types = load_price_list().linode.instance_types
    assert (types["g6-standard-2"].monthly, types["g6-standard-2"].region_monthly) == (24.0, {"id-cgk": 28.8, "br-gru": 33.6})
    assert all(t.transfer_gb for t in types.values())


def test_a_figure_with_no_source_must_say_it_is_unconfirmed():
    raw = copy.deepcopy(RAW)
    raw["linode"]["nodebalancer"]["sources"] = []
    with pytest.raises(PriceListError, match=r"linode\.nodebalancer.*unconfirmed"):
        parse_price_list(raw)


def test_a_missing_figure_must_say_why():
    raw = copy.deepcopy(RAW)
    raw["linode"]["instance_types"]["g6-standard-2"]["monthly"] = None
    with pytest.raises(PriceListError, match="must say why"):
        parse_price_list(raw)


def test_a_source_named_must_be_listed():
    raw = copy.deepcopy(RAW)
    raw["linode"]["nodebalancer"]["sources"] = ["a-page-nobody-listed"]
    with pytest.raises(PriceListError, match="a-page-nobody-listed"):
        parse_price_list(raw)


def test_an_unreadable_list_is_one_clear_error(tmp_path):
    broken = tmp_path / "prices.json"
    broken.write_text("{not json")
    with pytest.raises(PriceListError, match=r"cannot read the price list .*prices\.json"):
        load_price_list(broken)


def test_writing_the_list_gives_back_the_same_file(tmp_path):
    """The committed file is in the layout the refresh writes, so a refresh diffs line by line."""
    out = tmp_path / "prices.json"
    write_price_list(load_price_list(), out)
    assert out.read_text() == PRICE_LIST.read_text()
