"""drctl: the woocommerce-dr operations CLI."""
