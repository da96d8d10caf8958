<?php
/**
 * Plugin Name: woocommerce-dr media deletes
 * Description: Tells the media agent which uploads WordPress deleted, so they leave the region's bucket too.
 *
 * A must-use plugin. WordPress on one node deletes an attachment whose files another node uploaded:
 * they exist only in the bucket. WordPress calls wp_delete_file only for files it finds on this
 * disk (wp_delete_file_from_directory resolves each path with realpath first), so that filter alone
 * never hears of them: the attachment's files are found at `delete_attachment`, as
 * wp_delete_attachment_files finds them, and spooled once the attachment is deleted; every other
 * path WordPress deletes through wp_delete_file (image edits, plugins) is spooled from the filter. The agent (woocommerce-dr-media-agent)
 * moves each spooled path out of the bucket into its attic; a path the bucket does not have is
 * harmless; the other nodes drop their local copies when the bucket no longer has them.
 */
declare(strict_types=1);

const WOOCOMMERCE_DR_MEDIA_SPOOL = '/var/lib/woocommerce-dr/media/deletes';

/** Spool the paths under uploads among `$files` (absolute, or relative to uploads) for the agent. */
function woocommerce_dr_media_spool(array $files): void
{
    $base = trailingslashit(wp_normalize_path(wp_get_upload_dir()['basedir']));
    $relative = [];
    foreach ($files as $file) {
        $path = wp_normalize_path((string) $file);
        if (!path_is_absolute($path)) {
            $path = $base . ltrim($path, '/');
        }
        if (strpos($path, $base) === 0 && strlen($path) > strlen($base)) {
            $relative[] = substr($path, strlen($base));
        }
    }
    if (!$relative) {
        return;
    }
    $entry = WOOCOMMERCE_DR_MEDIA_SPOOL . '/' . str_replace('.', '', uniqid('', true)) . '-' . getmypid();
    // Written under a dot name and renamed when complete: the agent skips dot names, so it never
    // reads half an entry and deletes it.
    $partial = WOOCOMMERCE_DR_MEDIA_SPOOL . '/.' . basename($entry);
    if (@file_put_contents($partial, implode("\n", array_unique($relative)) . "\n") === false
        || !@rename($partial, $entry)) {
        // The bucket keeps these files until someone deletes them again: say so where operators look.
        error_log('woocommerce-dr media deletes: could not spool ' . implode(', ', $relative) . ' in '
            . WOOCOMMERCE_DR_MEDIA_SPOOL);
    }
}

/** The files of attachment `$post_id`, as wp_delete_attachment_files (WordPress 6.x) finds them. */
function woocommerce_dr_media_attachment_files(int $post_id): array
{
    $file = get_attached_file($post_id, true);
    if (!is_string($file) || $file === '') {
        return [];
    }
    $meta = wp_get_attachment_metadata($post_id, true);
    $backup_sizes = get_post_meta($post_id, '_wp_attachment_backup_sizes', true);
    $name = wp_basename($file);
    $files = [$file];
    foreach (is_array($meta) && is_array($meta['sizes'] ?? null) ? $meta['sizes'] : [] as $size) {
        if (!empty($size['file'])) {
            $files[] = str_replace($name, $size['file'], $file);
        }
    }
    if (is_array($meta) && !empty($meta['original_image'])) {
        $files[] = str_replace($name, $meta['original_image'], $file);
    }
    if (is_array($backup_sizes) && is_array($meta) && !empty($meta['file'])) {
        foreach ($backup_sizes as $size) {
            if (!empty($size['file'])) {
                $files[] = path_join(dirname($meta['file']), $size['file']);
            }
        }
    }
    return $files;
}

// The files are found while the attachment's metadata is still there (delete_attachment), and
// spooled only once its row is gone (deleted_post): when the database refuses the delete (a
// read-only DR region, a lost connection) WordPress keeps the attachment and its files, and so
// must the bucket.
add_action('delete_attachment', static function ($post_id) {
    $GLOBALS['woocommerce_dr_media_deleting'][(int) $post_id] = woocommerce_dr_media_attachment_files((int) $post_id);
});

add_action('deleted_post', static function ($post_id) {
    $files = $GLOBALS['woocommerce_dr_media_deleting'][(int) $post_id] ?? null;
    unset($GLOBALS['woocommerce_dr_media_deleting'][(int) $post_id]);
    if ($files && is_dir(WOOCOMMERCE_DR_MEDIA_SPOOL)) {
        woocommerce_dr_media_spool($files);
    }
});

add_filter('wp_delete_file', static function ($file) {
    if (is_string($file) && is_dir(WOOCOMMERCE_DR_MEDIA_SPOOL)) {
        woocommerce_dr_media_spool([$file]);
    }
    return $file;
});
