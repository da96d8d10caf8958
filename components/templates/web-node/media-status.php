<?php
// What /healthz says about this node's uploads: the media agent's last pass, as it wrote it to
// /var/lib/woocommerce-dr/media/status.json (WOOCOMMERCE_DR_MEDIA_STATUS moves it). A bucket that
// does not answer never fails /healthz: uploads still land on this disk and are pushed when it is
// back; it shows here as pending files and a problem, and in `drctl status`.
declare(strict_types=1);

/** The agent's status, or a problem saying why there is none. */
function woocommerce_dr_media_status(): array
{
    $path = getenv('WOOCOMMERCE_DR_MEDIA_STATUS') ?: '/var/lib/woocommerce-dr/media/status.json';
    $text = @file_get_contents($path);
    $status = $text === false ? null : json_decode($text, true);
    if (!is_array($status)) {
        return ['pending_files' => null, 'oldest_pending_seconds' => null, 'problem' => 'media agent has not reported'];
    }
    $age = microtime(true) - (float) ($status['checked_at'] ?? 0);
    $problem = $status['problem'] ?? null;
    if ($age > 60) {
        $problem = sprintf('media agent silent for %d s', (int) $age);
    }
    return [
        'pending_files' => $status['pending_files'] ?? null,
        'oldest_pending_seconds' => $status['oldest_pending_seconds'] ?? null,
        'problem' => $problem === null ? null : substr((string) $problem, 0, 500),
    ];
}
