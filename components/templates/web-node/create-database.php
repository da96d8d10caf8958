<?php
// Run by the primary region's installing node before `wp core install`, which needs the shop's
// schema to exist and does not create it. A new database server has none (a managed database
// least of all: only its admin account exists). Idempotent; exit 0 once the schema is there.
declare(strict_types=1);

require __DIR__ . '/woocommerce-dr.php';

try {
    $db = woocommerce_dr_settings('database');
    $link = woocommerce_dr_connect(['database' => ''] + $db, 10, 30);  // idempotent: safe to retry
    $name = str_replace('`', '``', $db['database']);
    $link->query("CREATE DATABASE IF NOT EXISTS `$name` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci");
    $link->close();
} catch (Throwable $e) {
    // The class and code say enough; the message could name the host and account.
    fprintf(STDERR, "create-database: failed (%s %d)\n", get_class($e), $e->getCode());
    exit(1);
}
