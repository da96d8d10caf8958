"""Post a stack's monthly cost, base branch against the pull request, as one comment per stack on
the pull request, edited on every push (as the Pulumi preview comment is), through the `gh` CLI.

The cost is `drctl plan --stack-file <base branch's file> --compare-file <pull request's file>`:
offline, from the price list in drctl/plan/prices.json. A cost that could not be made is posted as
such, with drctl's message, so the comment never silently shows a stale table.

Usage: cost_comment.py --stack prod --pr 12 --status 0 --cost cost.txt --errors cost.err
Needs GH_TOKEN (pull-requests: write) and GH_REPO in the environment.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

# GitHub refuses comment bodies over 65536 characters.
MAX_CHARS = 60000


def marker(stack: str) -> str:
    """The first line of the stack's comment: how the next run finds it to edit it."""
    return f"<!-- drctl-cost:{stack} -->"


def body(stack: str, status: str, cost: str, errors: str) -> str:
    head = f"{marker(stack)}\n### Monthly cost of `{stack}`: base branch → this pull request\n\n"
    if status == "0" and cost.strip():
        text = cost if len(cost) <= MAX_CHARS else cost[:MAX_CHARS] + "\n… (cut; the full table is in the run's log)\n"
        return (f"{head}```text\n{text.rstrip()}\n```\n\nOffline, from the price list in `drctl/plan/prices.json` "
                "(`*` a figure no source confirms, `?` no figure; usage-priced charges are not in the totals). "
                "How to read it: docs/cost.md.\n")
    reason = (errors.strip() or "(no message)")[-MAX_CHARS:]
    return (f"{head}**The cost could not be computed** (`drctl plan` exited {status or 'without a status'}), "
            f"so this comment says nothing about what the change costs.\n\n```text\n{reason}\n```\n")


def gh(*args: str, stdin: str | None = None) -> str:
    done = subprocess.run(["gh", *args], input=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"gh {' '.join(args[:2])} failed: {done.stderr.strip()}")
    return done.stdout


def json_values(text: str):
    """Every JSON value in `text`, one after another (what `gh api --jq '.[]'` prints)."""
    decoder, at = json.JSONDecoder(), 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at == len(text):
            return
        value, at = decoder.raw_decode(text, at)
        yield value


def existing_comment(pr: str, stack: str) -> int | None:
    listed = gh("api", "--paginate", f"repos/{{owner}}/{{repo}}/issues/{pr}/comments", "--jq", ".[]")
    ours = [c["id"] for c in json_values(listed) if str(c.get("body", "")).startswith(marker(stack))]
    return ours[-1] if ours else None  # the newest, should an earlier run have left two


def post(stack: str, pr: str, text: str) -> str:
    number = existing_comment(pr, stack)
    if number is None:
        gh("pr", "comment", pr, "--body-file", "-", stdin=text)
        return "posted"
    gh("api", "--method", "PATCH", f"repos/{{owner}}/{{repo}}/issues/comments/{number}", "--input", "-",
       stdin=json.dumps({"body": text}))
    return "updated"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--pr", required=True, help="the pull request's number")
    parser.add_argument("--status", default="", help="exit status of drctl plan")
    parser.add_argument("--cost", type=Path, required=True, help="drctl plan's output")
    parser.add_argument("--errors", type=Path, required=True, help="drctl plan's error output")
    args = parser.parse_args()
    cost = args.cost.read_text(errors="replace") if args.cost.exists() else ""
    errors = args.errors.read_text(errors="replace") if args.errors.exists() else ""
    done = post(args.stack, args.pr, body(args.stack, args.status.strip(), cost, errors))
    print(f"{args.stack}: cost comment {done} on pull request #{args.pr}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
