"""Registers a resource with pending Outputs, then fails: what a config error found mid-way looks like."""

import pulumi
import pulumi_linode as linode

nb = linode.NodeBalancer("half", region="us-east")
nb.ipv4.apply(lambda ip: ip)
raise pulumi.RunError("the program gave up after creating one resource")
