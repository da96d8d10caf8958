"""Tests that need a system tool skip without it on a laptop, and fail without it in CI."""

import pytest

from tests.support.binaries import require


def test_a_missing_tool_fails_the_test_when_ci_is_set(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"needs no-such-tool \(apt-get install no-such-tool\)"):
        require("no-such-tool")


def test_a_missing_tool_skips_the_test_outside_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"needs no-such-tool \(apt-get install no-such-tool\)"):
        require("no-such-tool")


def test_an_installed_tool_is_found_by_path():
    assert require("sh").endswith("/sh")


def test_drctl_names_the_debian_package_of_a_missing_server_binary():
    from drctl.local.binaries import MissingBinary, find

    with pytest.raises(MissingBinary, match=r"needs haproxy-does-not-exist, mariadbd-nope \(apt-get install "
                                            r"haproxy-does-not-exist mariadbd-nope\)"):
        find("sh", "mariadbd-nope", "haproxy-does-not-exist")
    assert MissingBinary(["mariadbd", "mariadb-install-db", "haproxy"]).packages == ["haproxy", "mariadb-server"]
