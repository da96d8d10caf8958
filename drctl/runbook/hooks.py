"""Pre- and post-hooks around state-changing commands (orchestrator's PreFailoverProcesses and
PostFailoverProcesses): page someone, drain a queue, post to chat, stop cron jobs.

A hook is an executable run without a shell, with the operation described in its environment:

    DRCTL_OPERATION   promote | failback
    DRCTL_PHASE       pre | post
    DRCTL_STACK       stack name
    DRCTL_FROM_REGION region losing the primary role
    DRCTL_TO_REGION   region gaining it
    DRCTL_MODE        planned | unplanned
    DRCTL_DRY_RUN     1 when --dry-run (hooks still run, and should not act)
    DRCTL_JOURNAL     path of the journal file
    DRCTL_RESULT      post hooks only: success | failed

A failing pre-hook aborts the operation before anything changes; a failing post-hook is reported
but cannot undo what is done. Hooks do not inherit drctl's API tokens (CLOUDFLARE_*, LINODE_TOKEN):
a hook that needs one gets it from its own configuration.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Mapping

HOOK_TIMEOUT_SECONDS = 120
_SECRET_PREFIXES = ("CLOUDFLARE_", "LINODE_TOKEN")


def hook_environment(env: Mapping[str, str]) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(_SECRET_PREFIXES)}
    return {**inherited, **env}


class HookFailed(Exception):
    pass


def run_hooks(commands: list[str], env: Mapping[str, str], timeout: float = HOOK_TIMEOUT_SECONDS) -> list[str]:
    """Run each hook in order; raise HookFailed on the first that fails. Returns what each printed."""
    outputs = []
    for command in commands:
        argv = shlex.split(command)
        try:
            proc = subprocess.run(argv, env=hook_environment(env), capture_output=True, text=True,
                                  timeout=timeout, check=False)
        except FileNotFoundError:
            raise HookFailed(f"hook {argv[0]!r} not found") from None
        except PermissionError:
            raise HookFailed(f"hook {argv[0]!r} is not executable") from None
        except subprocess.TimeoutExpired:
            raise HookFailed(f"hook {command!r} did not finish within {timeout:.0f} s") from None
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise HookFailed(f"hook {command!r} exited {proc.returncode}: {' | '.join(tail) or 'no output'}")
        outputs.append(proc.stdout.strip())
    return outputs
