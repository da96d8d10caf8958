<?php
// GET /healthz: can this web node serve the shop? nginx runs this outside WordPress (no plugins, no
// redirects) for load-balancer monitors that call every few seconds, so it is one short connection
// and one or two tiny queries. It answers 200 only when the database answers, and never puts a
// host, user or error message in the reply: the reason for a 503 goes to the server's error log.
declare(strict_types=1);

require __DIR__ . '/woocommerce-dr.php';

/** Seconds since the primary last stamped the database tier's heartbeat; null when unknown. */
function replica_lag_seconds(mysqli $link): ?float
{
    // The primary updates drctl.drctl_heartbeat every second, so on a replica the newest stamp's age
    // is the replication delay. A missing table or grant means "unknown", not "database down".
    try {
        $age = $link->query('SELECT TIMESTAMPDIFF(MICROSECOND, MAX(ts), NOW(6)) FROM drctl.drctl_heartbeat')
            ->fetch_row()[0];
    } catch (mysqli_sql_exception $e) {
        return null;
    }
    return $age === null ? null : round(max(0, (int) $age) / 1e6, 3);
}

$answer = ['region' => null, 'db_role' => null, 'db_reachable' => false, 'replica_lag_seconds' => null];
$status = 503;
try {
    $db = woocommerce_dr_settings('database');
    $answer['region'] = $db['region'];
    $link = woocommerce_dr_connect($db, 2);
    try {
        // MySQL's super_read_only implies read_only, and MariaDB has only read_only: one answer for both.
        $read_only = (int) $link->query('SELECT @@global.read_only')->fetch_row()[0] === 1;
        $answer['db_role'] = $read_only ? 'replica' : 'primary';
        $answer['db_reachable'] = true;
        $answer['replica_lag_seconds'] = $read_only ? replica_lag_seconds($link) : null;
        $status = 200;
    } finally {
        $link->close();
    }
} catch (Throwable $e) {
    error_log(sprintf('healthz: database check failed (%s %d)', get_class($e), $e->getCode()));
}

http_response_code($status);
header('Content-Type: application/json');
header('Cache-Control: no-store');
echo json_encode($answer), "\n";
