<?php
// GET /healthz: may this region take the shop's traffic now? nginx runs this outside WordPress (no
// plugins, no redirects) for load-balancer monitors that call every few seconds, so it is one short
// connection and a few tiny queries. The verdict (healthz-verdict.php, table in docs/health.md) is
// read live from the database: a primary region is healthy only while its database takes writes; a
// replica region only while it is a valid failover target (replication applying without error, lag
// within objectives.rpoSeconds, or everything received applied once the source is gone). The reply
// never carries a password, and no connection error: those go to the server's error log. A replica
// whose setup did not reach `replicating` passes on its problem as the database bootstrap wrote it
// for operators (it may name the source's host and account; the bootstrap leaves passwords out,
// and this script blanks its own, in case).
declare(strict_types=1);

require __DIR__ . '/woocommerce-dr.php';
require __DIR__ . '/healthz-verdict.php';
require __DIR__ . '/media-status.php';

const PROBLEM_MAX_BYTES = 500;

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
 * The server's SHOW REPLICA STATUS row (MySQL 8.0.22+ and MariaDB 10.5+ both take this syntax),
 * null when it replicates from nothing, false when this account may not read it (the database
 * tier grants it REPLICATION CLIENT, on MariaDB SLAVE MONITOR).
 */
function replica_status(mysqli $link)
{
    try {
        $row = $link->query('SHOW REPLICA STATUS')->fetch_assoc();
    } catch (mysqli_sql_exception $e) {
        return false;
    }
    return $row ?: null;
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
        $problem = str_replace($own_password, '********', (string) $problem);
    }
    return [$state, woocommerce_dr_utf8_prefix((string) $problem, PROBLEM_MAX_BYTES)];
}

$answer = [
    'region' => null, 'db_role' => null, 'db_reachable' => false, 'replica_lag_seconds' => null,
    'replica_state' => null, 'replica_problem' => null, 'reason' => 'database-unreachable',
    'media' => woocommerce_dr_media_status(),
];
$status = 503;
try {
    $db = woocommerce_dr_settings('database');
    $answer['region'] = $db['region'];
    // Connect without the shop's schema first: a replica that refused to set up has none, and must
    // still be able to say why. Short timeouts for connecting and reading: a monitor needs a quick
    // answer, and these reads are safe to abandon.
    $link = woocommerce_dr_connect(['database' => ''] + $db, 2, 2);
    try {
        // MySQL's super_read_only implies read_only, and MariaDB has only read_only: one answer for both.
        $read_only = (int) $link->query('SELECT @@global.read_only')->fetch_row()[0] === 1;
        $answer['db_role'] = $read_only ? 'replica' : 'primary';
        $facts = ['read_only' => $read_only, 'replica_status' => null, 'replica_state' => null,
                  'lag_seconds' => null, 'rpo_seconds' => (float) $db['rpo_seconds']];
        if ($read_only) {
            [$state, $problem] = replica_setup($link, (string) $db['password']);
            $answer['replica_state'] = $facts['replica_state'] = $state;
            $answer['replica_problem'] = $state === null || $state === 'replicating' ? null : $problem;
            $facts['replica_status'] = replica_status($link);
        }
        $link->select_db($db['database']);
        $answer['db_reachable'] = true;
        if ($read_only) {
            $answer['replica_lag_seconds'] = $facts['lag_seconds'] = replica_lag_seconds($link);
        }
        [$healthy, $answer['reason']] = woocommerce_dr_health_verdict($facts);
        $status = $healthy ? 200 : 503;
    } finally {
        $link->close();
    }
} catch (Throwable $e) {
    error_log(sprintf('healthz: database check failed (%s %d)', get_class($e), $e->getCode()));
}

http_response_code($status);
header('Content-Type: application/json');
header('Cache-Control: no-store');
// Never an empty body: any byte that is not UTF-8 (a server message) becomes U+FFFD.
echo json_encode($answer, JSON_INVALID_UTF8_SUBSTITUTE), "\n";
