<?php
// The verdict of /healthz: may this region take the shop's traffic now? A pure function of what
// healthz.php read from the database, kept apart so the decision table (docs/health.md) is tested
// case by case with php-cli. The region's role comes from its database, live, not from the stack:
// after `drctl promote` a DR region is a primary region without any redeploy.
//
//   a writable database                   -> a primary region: 200
//   read-only, not replicating            -> a primary that cannot take orders (fenced, read-only): 503
//   read-only and replicating (a replica) -> 200 only while it is a valid failover target:
//     SQL thread running without error, and
//       - source answering (IO thread connected): lag within objectives.rpoSeconds
//       - source gone (IO thread not connected): everything received applied
//     The second rule is what keeps the DR pool healthy when the primary region dies: with the
//     source gone the heartbeat stops and its age grows without bound, so lag can no longer be the
//     test; a replica that applied all it received is as current as it will ever be.
declare(strict_types=1);

/** The first of `$names` present in a SHOW REPLICA STATUS row (MySQL 8.0.22+ and MariaDB differ). */
function woocommerce_dr_status_field(array $row, string ...$names)
{
    foreach ($names as $name) {
        if (array_key_exists($name, $row)) {
            return $row[$name];
        }
    }
    return null;
}

/**
 * [healthy, reason] for the facts healthz.php gathered:
 *   read_only       bool: @@global.read_only (MySQL's super_read_only implies it)
 *   replica_status  the SHOW REPLICA STATUS row, null when the server is no replica, false when the
 *                   account may not read it
 *   replica_state   what the replica's bootstrap recorded (drctl_local.replica_state), or null
 *   lag_seconds     the heartbeat's age, or null when unknown
 *   rpo_seconds     objectives.rpoSeconds
 * `reason` is one word an operator can look up in docs/health.md.
 */
function woocommerce_dr_health_verdict(array $facts): array
{
    if (!$facts['read_only']) {
        return [true, 'primary-writable'];
    }
    $state = $facts['replica_state'];
    if ($state !== null && $state !== 'replicating') {
        // The replica's setup refused or failed (or is still seeding): no DR region yet.
        return [false, 'replica-setup-' . $state];
    }
    $row = $facts['replica_status'];
    if ($row === false) {
        return [false, 'replica-status-unreadable'];
    }
    if ($row === null) {
        return [false, 'read-only'];
    }
    if (woocommerce_dr_status_field($row, 'Replica_SQL_Running', 'Slave_SQL_Running') !== 'Yes') {
        return [false, 'replica-sql-stopped'];
    }
    if ((int) woocommerce_dr_status_field($row, 'Last_SQL_Errno') !== 0) {
        return [false, 'replica-sql-error'];
    }
    if (woocommerce_dr_status_field($row, 'Replica_IO_Running', 'Slave_IO_Running') === 'Yes') {
        $lag = $facts['lag_seconds'];
        if ($lag === null) {
            $behind = woocommerce_dr_status_field($row, 'Seconds_Behind_Source', 'Seconds_Behind_Master');
            $lag = $behind === null ? null : (float) $behind;
        }
        if ($lag === null) {
            return [false, 'replica-lag-unknown'];
        }
        return $lag <= $facts['rpo_seconds'] ? [true, 'replica-current'] : [false, 'replica-lag-over-rpo'];
    }
    // The source does not answer: everything received must be applied.
    $received = [woocommerce_dr_status_field($row, 'Source_Log_File', 'Master_Log_File'),
                 (int) woocommerce_dr_status_field($row, 'Read_Source_Log_Pos', 'Read_Master_Log_Pos')];
    $applied = [woocommerce_dr_status_field($row, 'Relay_Source_Log_File', 'Relay_Master_Log_File'),
                (int) woocommerce_dr_status_field($row, 'Exec_Source_Log_Pos', 'Exec_Master_Log_Pos')];
    return $received === $applied ? [true, 'replica-source-gone-all-applied'] : [false, 'replica-source-gone-applying'];
}

/**
 * At most `$max_bytes` of UTF-8 `$text`, cut before a character that would not fit whole: a cut
 * through a multibyte character makes the text invalid UTF-8, and json_encode() would then return
 * false and leave /healthz's body empty.
 */
function woocommerce_dr_utf8_prefix(string $text, int $max_bytes): string
{
    if (strlen($text) <= $max_bytes) {
        return $text;
    }
    $cut = substr($text, 0, $max_bytes);
    for ($back = 1; $back <= min(4, strlen($cut)); $back++) {
        $byte = ord($cut[strlen($cut) - $back]);
        if (($byte & 0xC0) === 0x80) {
            continue;  // a continuation byte: its character starts further back
        }
        $length = $byte >= 0xF0 ? 4 : ($byte >= 0xE0 ? 3 : ($byte >= 0xC0 ? 2 : 1));
        return $length > $back ? substr($cut, 0, strlen($cut) - $back) : $cut;
    }
    return $cut;
}
