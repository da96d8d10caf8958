<?php
// What /healthz and WordPress (wp-config.php, wp-content/db.php) share on a web node: the settings
// cloud-init wrote to /etc/woocommerce-dr, and the one way to reach this region's database: always
// over TLS, always checking the server's certificate against the database's CA, with a short connect timeout.
declare(strict_types=1);

/** Settings file /etc/woocommerce-dr/NAME.json as an array (WOOCOMMERCE_DR_ETC moves the folder). */
function woocommerce_dr_settings(string $name): array
{
    $path = (getenv('WOOCOMMERCE_DR_ETC') ?: '/etc/woocommerce-dr') . "/$name.json";
    $text = @file_get_contents($path);
    if ($text === false) {
        throw new RuntimeException("cannot read $path");
    }
    return json_decode($text, true, 8, JSON_THROW_ON_ERROR);
}

/**
 * A connection to the database described by database.json; throws mysqli_sql_exception.
 *
 * `$read_timeout_seconds` null: no read timeout, wait for the server's answer however long it takes.
 * That is what WordPress's own connection (wp-content/db.php) needs: wpdb re-runs a query whose
 * connection was lost ("server has gone away"), and a read timeout cuts the connection while the
 * server still executes the query, so a write waiting on a row lock longer than the timeout would be
 * applied twice (double stock decrements, duplicate orders). Only callers whose queries are safe to
 * abandon (/healthz's reads) set one. The connect timeout is always there: an unreachable server
 * fails fast.
 */
function woocommerce_dr_connect(array $db, int $connect_timeout_seconds, ?int $read_timeout_seconds = null): mysqli
{
    // WordPress turns mysqli's exceptions off for itself: switch them on for this call only.
    $driver = new mysqli_driver();
    $report_mode = $driver->report_mode;
    mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
    try {
        $link = mysqli_init();
        $link->options(MYSQLI_OPT_CONNECT_TIMEOUT, $connect_timeout_seconds);
        if ($read_timeout_seconds !== null) {
            $link->options(MYSQLI_OPT_READ_TIMEOUT, $read_timeout_seconds);
        }
        $link->options(MYSQLI_OPT_SSL_VERIFY_SERVER_CERT, true);
        $link->ssl_set(null, null, $db['ca_file'], null, null);
        $link->real_connect(
            $db['host'], $db['user'], $db['password'], $db['database'], (int) $db['port'], null, MYSQLI_CLIENT_SSL
        );
        return $link;
    } finally {
        mysqli_report($report_mode);
    }
}
