<?php
/**
 * Plugin Name: woocommerce-dr media deletes
 * Description: Tells the media agent which uploads WordPress deleted, so they leave the region's bucket too.
 *
 * A must-use plugin. WordPress on one node deletes an attachment whose files another node uploaded:
 * they exist only in the bucket, so unlinking them here does nothing. Every path WordPress deletes
 * (wp_delete_file) is spooled for the agent (woocommerce-dr-media-agent), which deletes it from the
 * bucket; the other nodes drop their local copies when the bucket no longer has them.
 */
declare(strict_types=1);

const WOOCOMMERCE_DR_MEDIA_SPOOL = '/var/lib/woocommerce-dr/media/deletes';

add_filter('wp_delete_file', static function ($file) {
    $uploads = wp_get_upload_dir()['basedir'];
    $real = wp_normalize_path((string) $file);
    $base = trailingslashit(wp_normalize_path($uploads));
    if (strpos($real, $base) === 0 && is_dir(WOOCOMMERCE_DR_MEDIA_SPOOL)) {
        $relative = substr($real, strlen($base));
        @file_put_contents(
            WOOCOMMERCE_DR_MEDIA_SPOOL . '/' . uniqid('', true),
            $relative . "\n",
            LOCK_EX
        );
    }
    return $file;
});
