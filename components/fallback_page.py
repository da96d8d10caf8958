"""The maintenance page shoppers see when no region can serve: a Cloudflare Worker on the shop's
route that passes every request to the origin and answers a branded 503 only when the origin fails.

Why a Worker and not Cloudflare's custom error pages: it works the same in both traffic modes, it
leaves the health path untouched, it sets the 503's `Retry-After` and `Cache-Control: no-store`
itself, and its logic runs for real in the tests (under Node). docs/fallback-page.md has the costs,
limits and token scopes.

The script is a real file (templates/fallback-worker.js) with four constants rendered in by
components/fallback_worker.py; the page is either built there from the stack config's title and
message (HTML-escaped, once) or read from the HTML file `htmlFile` names (components/fallback_html.py
checks it), embedded as written.
"""

from __future__ import annotations

import pulumi
import pulumi_cloudflare as cloudflare

from components.config import StackConfig
from components.fallback_worker import route_pattern, script_name, worker_for

MAIN_MODULE = "fallback-worker.js"
# The Workers runtime behaviour the script was written and tested against.
COMPATIBILITY_DATE = "2024-09-23"


class FallbackPage(pulumi.ComponentResource):
    script_name: pulumi.Output[str]
    route_pattern: pulumi.Output[str]

    def __init__(self, name: str, config: StackConfig, opts: pulumi.ResourceOptions | None = None):
        super().__init__("woocommerce-dr:index:FallbackPage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        t = config.traffic
        script = cloudflare.WorkersScript(
            f"{name}-script",
            account_id=t.account_id,
            script_name=script_name(pulumi.get_project(), pulumi.get_stack()),
            content=worker_for(config),
            main_module=MAIN_MODULE,
            compatibility_date=COMPATIBILITY_DATE,
            opts=child,
        )
        route = cloudflare.WorkersRoute(
            f"{name}-route",
            zone_id=t.zone_id,
            pattern=route_pattern(config.domain),
            script=script.script_name,
            opts=child,
        )
        self.script_name = script.script_name
        self.route_pattern = route.pattern
        self.register_outputs({"scriptName": self.script_name, "routePattern": self.route_pattern})
