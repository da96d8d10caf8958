"""woocommerce-dr: read and validate the stack config once, check the regions, compose the
components, export what `drctl` and people need. Everything else lives in components/."""

import pulumi

from components import preflight
from components.config import load_stack_config

config = load_stack_config()
preflight.check_regions(config)

pulumi.export("url", f"https://{config.domain}")
pulumi.export("regions", [r.region for r in config.regions])
pulumi.export("worstCaseDetectionSeconds", config.traffic.monitor.worst_case_detection_seconds)
