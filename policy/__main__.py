"""The woocommerce-dr policy pack, as `pulumi preview|up --policy-pack policy` runs it.

Constructing the PolicyPack starts the analyzer's gRPC server and blocks, so it happens only here;
the policies themselves live in woocommerce_dr_policies.py, which the tests import directly.
"""

from pulumi_policy import EnforcementLevel, PolicyPack
from woocommerce_dr_policies import POLICIES

PolicyPack(
    name="woocommerce-dr",
    policies=POLICIES,
    enforcement_level=EnforcementLevel.MANDATORY,
)
