"""Alert hooks: a webhook URL and/or a command, called on every traffic switch and when every
region is down (or traffic is stranded on a down region); drctl guard calls the same hooks on its
own events (docs/guard.md).

The webhook gets a JSON POST of the event; the command gets the same JSON on stdin and the main
fields as DRCTL_ALERT_* environment variables (documented in docs/watch.md), and no CLOUDFLARE_*
variable. A failing hook is
reported to the caller and never raised: alerting must not stop the watchdog. The webhook URL is
never logged (chat webhooks carry their secret in the URL).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class Alerter:
    webhook: str | None = None
    command: str | None = None
    timeout: float = 5.0

    @property
    def configured(self) -> bool:
        return bool(self.webhook or self.command)

    def send(self, event: dict[str, Any]) -> list[str]:
        """Deliver `event` to every hook; return one message per hook that failed."""
        failures = []
        if self.webhook:
            failures += self._post(event)
        if self.command:
            failures += self._run(event)
        return failures

    def _post(self, event: dict[str, Any]) -> list[str]:
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked when the flag is parsed
            self.webhook or "", data=json.dumps(event).encode(), method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "drctl-watch"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                response.read(1024)
        except urllib.error.HTTPError as err:
            return [f"webhook answered HTTP {err.code}"]
        except (OSError, ValueError) as err:
            reason = getattr(err, "reason", err)
            return [f"webhook unreachable ({type(reason).__name__})"]
        return []

    def _run(self, event: dict[str, Any]) -> list[str]:
        # The hook is someone else's program: it gets no Cloudflare credentials.
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDFLARE_")}
        env.update({f"DRCTL_ALERT_{k.upper()}": str(v) for k, v in event.items() if v is not None and not isinstance(v, dict | list)})
        try:
            proc = subprocess.run(shlex.split(self.command or ""), input=json.dumps(event), text=True, env=env,
                                  capture_output=True, timeout=self.timeout, check=False)
        except subprocess.TimeoutExpired:
            return [f"alert command timed out after {self.timeout:g} s"]
        except OSError as err:
            return [f"alert command could not start ({err.strerror})"]
        if proc.returncode != 0:
            return [f"alert command exited {proc.returncode}: {proc.stderr.strip()[:200]}"]
        return []


def deliver(alerter: Alerter, name: str, details: dict[str, Any], *, stack: str, domain: str, at: float,
            dry_run: bool, log: Callable[..., Any], counted: Callable[[str, int], None] | None = None) -> None:
    """Send one alert the way every drctl service does: nothing when no hook is configured, only a
    log line in a dry run (it has no effects outside its process), a log line per failed hook;
    `counted(name, failures)` keeps the service's metrics."""
    if not alerter.configured:
        return
    if dry_run:
        log("alert_skipped", alert=name, dry_run=True)
        return
    event = {"event": name, "stack": stack, "domain": domain,
             "at": datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds"), **details}
    failures = alerter.send(event)
    if counted:
        counted(name, len(failures))
    for failure in failures:
        log("alert_failed", alert=name, error=failure)
