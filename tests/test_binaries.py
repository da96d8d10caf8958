"""Tests that need a system tool skip without it on a laptop, and fail without it in CI."""

import pytest

from tests.binaries import require


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
