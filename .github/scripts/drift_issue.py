"""Report a scheduled drift check on one GitHub issue per stack, through the `gh` CLI.

The check is `pulumi preview --refresh --expect-no-changes --diff`. Its outcome is one of:
  in sync  exit status 0                          -> close the stack's open drift issue, if any
  drift    the CLI's "no changes were expected"   -> open the issue, or comment on the open one
  failed   anything else (login, config, plugin)  -> the same, saying the check itself failed
One issue per stack, found by its exact title among open issues labelled `drift`, so a week of
drift is one issue with seven comments, and two stacks checked in parallel never race for one.
Exits 1 on drift or failure, so the workflow run is red as well.

Usage: drift_issue.py --stack prod --status 255 --log preview.log --run-url https://...
Needs GH_TOKEN (issues: write) and GH_REPO in the environment.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

LABEL = "drift"
# GitHub refuses bodies over 65536 characters; keep the end of the log, where the summary is.
MAX_LOG_CHARS = 60000
DRIFT_MARK = "no changes were expected"  # the CLI's --expect-no-changes error, every version


def title(stack: str) -> str:
    return f"Drift on stack {stack}"


def outcome(status: str, log: str) -> str:
    if status == "0":
        return "in sync"
    if status and DRIFT_MARK in log:
        return "drift"
    return "failed"


def body(stack: str, result: str, log: str, run_url: str) -> str:
    if result == "drift":
        headline = (f"**The real resources of `{stack}` no longer match the code.** `pulumi up` would change "
                    "what is listed below. Either make the code say what the cloud now has (and merge it), "
                    f"or run `pulumi up --stack {stack}` to put the cloud back.")
    else:
        headline = (f"**The drift check of `{stack}` could not run**, so drift is unknown (this is not drift "
                    "itself). The log below says why: often an expired token or a changed backend secret.")
    tail = log[-MAX_LOG_CHARS:] or "(no output: the check did not start; see the run)"
    cut = "… (start of the log cut; full log in the run)\n" if len(log) > MAX_LOG_CHARS else ""
    return f"{headline}\n\nRun: {run_url}\n\n<details><summary>preview output</summary>\n\n~~~text\n{cut}{tail}\n~~~\n</details>\n"


def gh(*args: str, stdin: str | None = None) -> str:
    done = subprocess.run(["gh", *args], input=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"gh {' '.join(args[:2])} failed: {done.stderr.strip()}")
    return done.stdout


def open_issue(stack: str) -> int | None:
    listed = json.loads(gh("issue", "list", "--label", LABEL, "--state", "open", "--limit", "100",
                           "--json", "number,title"))
    return next((i["number"] for i in listed if i["title"] == title(stack)), None)


def report(stack: str, status: str, log: str, run_url: str) -> int:
    result = outcome(status, log)
    number = open_issue(stack)
    if result == "in sync":
        if number is not None:
            gh("issue", "close", str(number), "--comment", f"`{stack}` matches the code again: {run_url}")
        print(f"{stack}: in sync")
        return 0
    text = body(stack, result, log, run_url)
    if number is None:
        # --force: create the label on first use, leave it as is afterwards.
        gh("label", "create", LABEL, "--force", "--color", "D93F0B",
           "--description", "The real infrastructure differs from the code, or the drift check failed")
        gh("issue", "create", "--title", title(stack), "--label", LABEL, "--body-file", "-", stdin=text)
    else:
        gh("issue", "comment", str(number), "--body-file", "-", stdin=text)
    print(f"{stack}: {result}, reported on the '{title(stack)}' issue")
    return 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--status", default="", help="exit status of the preview; empty when it never ran")
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--run-url", required=True)
    args = parser.parse_args()
    log = args.log.read_text(errors="replace") if args.log.exists() else ""
    return report(args.stack, args.status.strip(), log, args.run_url)


if __name__ == "__main__":
    sys.exit(main())
