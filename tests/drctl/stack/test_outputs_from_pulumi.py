"""`-s STACK` reads `pulumi stack output --json --show-secrets`: what it prints besides the JSON
document must not turn into a traceback."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from drctl.stack.outputs import OutputsError, load_outputs
from tests.support.runbook_support import outputs_doc, paper_servers


def fake_pulumi(directory: Path, monkeypatch: pytest.MonkeyPatch, stdout: str) -> None:
    """A `pulumi` first on PATH that prints `stdout` and exits 0."""
    (directory / "stdout.txt").write_text(stdout)
    script = directory / "pulumi"
    script.write_text(f"#!/bin/sh\ncat {directory / 'stdout.txt'}\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ['PATH']}")


def test_a_warning_line_before_the_json_is_skipped(tmp_path, monkeypatch):
    doc = outputs_doc(paper_servers(tmp_path))
    fake_pulumi(tmp_path, monkeypatch, "warning: A new version of Pulumi is available.\n" + json.dumps(doc, indent=2))
    assert load_outputs("prod").stack == "runbook-test"


def test_output_without_a_json_document_is_one_message_naming_the_flag(tmp_path, monkeypatch):
    fake_pulumi(tmp_path, monkeypatch, "error: no stack named 'prod' found\n")
    with pytest.raises(OutputsError, match=r"^-s/--stack: pulumi stack output --stack prod printed no JSON document "
                                           r"\(got \"error: no stack named 'prod' found\"\)$"):
        load_outputs("prod")
