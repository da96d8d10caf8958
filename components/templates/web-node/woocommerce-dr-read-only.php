<?php
/*
 * Plugin Name: woocommerce-dr read-only mode
 * Description: While this region's database is a read-only replica, the shop shows its catalogue with a notice that orders are paused, and answers everything that would write with a 503 page. Normal again by itself once the database takes writes (after `drctl promote`).
 */
// A must-use plugin (wp-content/mu-plugins/), so it runs on every request through WordPress, before
// wp-login.php, wp-comments-post.php, wp-admin or the REST API act on it. /healthz and /livez are
// outside WordPress and never see it.
//
// How it knows: one `SELECT @@global.read_only` per request, on the connection WordPress has already
// opened (a fraction of a millisecond, next to the dozens of queries of any page). Nothing is cached
// between requests, so the first request after `drctl promote` makes the database writable already
// finds the shop open: no restart, no cache to expire. MySQL's super_read_only implies read_only,
// and MariaDB has only read_only: the one variable answers for both. docs/read-only-mode.md.
declare(strict_types=1);

const WOOCOMMERCE_DR_RETRY_AFTER_SECONDS = 300;

/** Is this region's database read-only right now? Asked once per request. */
function woocommerce_dr_read_only(): bool
{
    static $read_only = null;
    if ($read_only === null) {
        global $wpdb;
        // A failed check leaves the shop as it is normally: the database's own errors say more.
        $read_only = (string) $wpdb->get_var('SELECT @@global.read_only') === '1';
    }
    return $read_only;
}

/**
 * Would this request change something? Anything but GET/HEAD; logging in or out, signing up and
 * the dashboard; WooCommerce's cart, checkout and account actions (by their query parameters and
 * default page paths, checked here at the WordPress level; with WooCommerce loaded its own
 * is_cart()/is_checkout()/is_account_page() are checked too, below).
 */
function woocommerce_dr_writes(string $method, string $uri, array $query): bool
{
    if (!in_array($method, ['GET', 'HEAD'], true)) {
        return true;
    }
    $path = '/' . ltrim((string) parse_url($uri, PHP_URL_PATH), '/');
    foreach (['/wp-login.php', '/wp-signup.php', '/wp-activate.php', '/wp-comments-post.php', '/xmlrpc.php'] as $script) {
        if (str_ends_with($path, $script)) {
            return true;
        }
    }
    foreach (['/wp-admin/', '/cart/', '/checkout/', '/my-account/'] as $prefix) {
        if (str_starts_with($path . '/', $prefix)) {
            return true;
        }
    }
    $cart_actions = ['add-to-cart', 'remove_item', 'undo_item', 'update_cart', 'apply_coupon', 'remove_coupon',
                     'wc-ajax', 'order_again', 'cancel_order', 'pay_for_order', 'add-to-wishlist'];
    return array_intersect($cart_actions, array_keys($query)) !== [];
}

/** The 503 page: what a shopper reads, and what Cloudflare and browsers are told (retry later). */
function woocommerce_dr_paused(): void
{
    status_header(503);
    header('Retry-After: ' . WOOCOMMERCE_DR_RETRY_AFTER_SECONDS);
    header('Cache-Control: no-store');
    $message = 'Orders are paused for a few minutes while the shop moves to another data centre. '
        . 'You can keep browsing the catalogue; please try again shortly.';
    $wants_json = str_contains($_SERVER['HTTP_ACCEPT'] ?? '', 'application/json')
        || str_contains($_SERVER['REQUEST_URI'] ?? '', '/wp-json/') || isset($_GET['wc-ajax']);
    if ($wants_json) {
        header('Content-Type: application/json; charset=utf-8');
        echo json_encode(['code' => 'woocommerce_dr_read_only', 'message' => $message,
                          'data' => ['status' => 503]]), "\n";
        exit;
    }
    header('Content-Type: text/html; charset=utf-8');
    $title = esc_html(get_bloginfo('name') ?: 'The shop');
    echo '<!DOCTYPE html><html><head><meta charset="utf-8"><meta name="robots" content="noindex">',
        "<title>Orders paused – $title</title></head><body>",
        "<h1>Orders are paused</h1><p>", esc_html($message), '</p>',
        '<p><a href="', esc_url(home_url('/')), '">Back to the catalogue</a></p></body></html>', "\n";
    exit;
}

function woocommerce_dr_store_notice(): void
{
    static $shown = false;
    if ($shown) {
        return;
    }
    $shown = true;
    echo '<p class="woocommerce-dr-read-only-notice" role="status" style="margin:0;padding:.75em;',
        'background:#fff3cd;color:#664d03;text-align:center">',
        'Orders are paused for a few minutes: you can browse the catalogue, and checkout will be back shortly.',
        '</p>';
}

/** Leave out every write while read-only: each would fail and log an error (transients, options). */
function woocommerce_dr_skip_writes(string $query): string
{
    return preg_match('/^\s*(insert|update|delete|replace|create|alter|drop|truncate)\s/i', $query) ? '' : $query;
}

if (woocommerce_dr_read_only()) {
    if (woocommerce_dr_writes($_SERVER['REQUEST_METHOD'] ?? 'GET', $_SERVER['REQUEST_URI'] ?? '/', $_GET)) {
        woocommerce_dr_paused();
    }
    add_filter('query', 'woocommerce_dr_skip_writes');
    // WooCommerce: nothing can be put in a cart, and its own page checks catch renamed cart,
    // checkout and account pages.
    add_filter('woocommerce_is_purchasable', '__return_false');
    add_action('template_redirect', static function (): void {
        foreach (['is_cart', 'is_checkout', 'is_account_page'] as $is_page) {
            if (function_exists($is_page) && $is_page()) {
                woocommerce_dr_paused();
            }
        }
    }, 0);
    add_action('wp_body_open', 'woocommerce_dr_store_notice');
    add_action('wp_footer', 'woocommerce_dr_store_notice');
}
