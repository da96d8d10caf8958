<?php
// WordPress settings of a woocommerce-dr web node. Nothing secret is written here: the database comes
// from /etc/woocommerce-dr/database.json (shared with /healthz), the site address, keys and salts
// from /etc/woocommerce-dr/wordpress.json; cloud-init writes both from the Pulumi stack.
require_once '/usr/local/share/woocommerce-dr/woocommerce-dr.php';

$woocommerce_dr_db = woocommerce_dr_settings('database');
$woocommerce_dr_site = woocommerce_dr_settings('wordpress');

define('DB_NAME', $woocommerce_dr_db['database']);
define('DB_USER', $woocommerce_dr_db['user']);
define('DB_PASSWORD', $woocommerce_dr_db['password']);
define('DB_HOST', $woocommerce_dr_db['host'] . ':' . $woocommerce_dr_db['port']);
define('DB_CHARSET', 'utf8mb4');
define('DB_COLLATE', '');
// wp-content/db.php makes the connection: over TLS, verifying the server against the database's CA.
define('MYSQL_CLIENT_FLAGS', MYSQLI_CLIENT_SSL);

// The same keys and salts on every node of every region, so a login survives a failover.
foreach ($woocommerce_dr_site['keys'] as $woocommerce_dr_key => $woocommerce_dr_value) {
    define($woocommerce_dr_key, $woocommerce_dr_value);
}

define('WP_HOME', $woocommerce_dr_site['home']);
define('WP_SITEURL', $woocommerce_dr_site['home']);
define('FORCE_SSL_ADMIN', true);
// Page views must not run jobs on every node: the woocommerce-dr-wp-cron timer runs them on one.
define('DISABLE_WP_CRON', true);
// Code changes from the dashboard would land on one node only; new versions ship by redeploying.
define('DISALLOW_FILE_MODS', true);

$table_prefix = 'wp_';

if (!defined('ABSPATH')) {
    define('ABSPATH', __DIR__ . '/');
}
require_once ABSPATH . 'wp-settings.php';
