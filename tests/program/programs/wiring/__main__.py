"""A small program whose inputs depend on computed outputs and secrets, to check how the offline
engine shows them."""

import pulumi
import pulumi_linode as linode
import pulumi_random as random


class Pair(pulumi.ComponentResource):
    def __init__(self, name: str):
        super().__init__("woocommerce-dr:index:Pair", name)
        password = random.RandomPassword(f"{name}-root", length=24, opts=pulumi.ResourceOptions(parent=self))
        web = linode.Instance(f"{name}-web", region="us-east", type="g6-standard-2", private_ip=True,
                              root_pass=password.result, opts=pulumi.ResourceOptions(parent=self))
        nb = linode.NodeBalancer(f"{name}-nb", region="us-east", opts=pulumi.ResourceOptions(parent=self))
        linode.NodeBalancerNode(f"{name}-node", nodebalancer_id=nb.id.apply(int), config_id=1, label="web",
                                address=web.private_ip_address.apply(lambda ip: f"{ip}:443"),
                                opts=pulumi.ResourceOptions(parent=self))
        self.ip = nb.ipv4
        self.register_outputs({"ip": nb.ipv4})


pair = Pair("demo")
pulumi.export("ip", pair.ip)
pulumi.export("password", pulumi.Output.secret("hunter2"))
