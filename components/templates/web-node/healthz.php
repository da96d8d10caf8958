<?php
// GET /healthz: can this web node serve the shop? nginx runs this outside WordPress (no plugins, no
// redirects) for load-balancer monitors that call every few seconds, so it is one short connection
// and a few tiny queries. It answers 200 only when the database answers with the shop's schema and,
// on a replica, once the replica's own setup reached `replicating`: a replica that refused (say, the
// primary's account lacks a privilege) or failed is no DR region to fail over to. The reply never
// carries a password, and no connection error: those go to the server's error log. A replica that
// is not replicating passes on its setup problem as the database bootstrap wrote it for operators
// (it may name the source's host and account; the bootstrap leaves passwords out, and this script
// blanks its own, in case).
declare(strict_types=1);

require __DIR__ . '/woocommerce-dr.php';
require __DIR__ . '/media-status.php';

const PROBLEM_MAX_LENGTH = 500;

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

/**
 * [state, problem] the replica's bootstrap (drctl/mysql/bootstrap.py) recorded on this server, or
 * [null, null] when there is no record: a replica set up another way (by drctl after a failback)
 * has none, and that says nothing against it.
 */
function replica_setup(mysqli $link, string $own_password): array
{
    try {
        $row = $link->query('SELECT state, problem FROM drctl_local.replica_state WHERE id = 1')->fetch_row();
    } catch (mysqli_sql_exception $e) {
        return [null, null];
    }
    if ($row === null) {
        return [null, null];
    }
    [$state, $problem] = $row;
    if ($own_password !== '') {
        $problem = str_replace($own_password, '********', $problem);
    }
    return [$state, substr($problem, 0, PROBLEM_MAX_LENGTH)];
}

$answer = [
    'region' => null, 'db_role' => null, 'db_reachable' => false, 'replica_lag_seconds' => null,
    'replica_state' => null, 'replica_problem' => null, 'media' => woocommerce_dr_media_status(),
];
$status = 503;
try {
    $db = woocommerce_dr_settings('database');
    $answer['region'] = $db['region'];
    // Connect without the shop's schema first: a replica that refused to set up has none, and must
    // still be able to say why.
    $link = woocommerce_dr_connect(['database' => ''] + $db, 2);
    try {
        // MySQL's super_read_only implies read_only, and MariaDB has only read_only: one answer for both.
        $read_only = (int) $link->query('SELECT @@global.read_only')->fetch_row()[0] === 1;
        $answer['db_role'] = $read_only ? 'replica' : 'primary';
        $usable = true;
        if ($read_only) {
            [$state, $problem] = replica_setup($link, (string) $db['password']);
            $answer['replica_state'] = $state;
            $usable = $state === null || $state === 'replicating';
            $answer['replica_problem'] = $usable ? null : $problem;
        }
        $link->select_db($db['database']);
        $answer['db_reachable'] = true;
        $answer['replica_lag_seconds'] = $read_only ? replica_lag_seconds($link) : null;
        $status = $usable ? 200 : 503;
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
