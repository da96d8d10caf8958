"""Two resources with one name: `pulumi up` rejects this, so the mock engine must too."""

import pulumi_random as random

random.RandomPassword("same", length=16)
random.RandomPassword("same", length=16)
