<?php
// WordPress database drop-in (wp-content/db.php). Core's wpdb cannot hand mysqli a CA certificate,
// so it would either skip TLS or trust any server. This connects through the same function as
// /healthz (TLS, server certificate checked against the database's CA) and otherwise leaves wpdb
// as it is; the steps after connecting mirror wpdb::db_connect().
require_once '/usr/local/share/woocommerce-dr/woocommerce-dr.php';

class WooCommerce_DR_DB extends wpdb
{
    public function db_connect($allow_bail = true)
    {
        $this->is_mysql = true;
        mysqli_report(MYSQLI_REPORT_OFF);
        try {
            // A connect timeout only, never a read timeout: wpdb retries a query whose connection
            // was cut, so a write still running on the server would be applied twice.
            $this->dbh = woocommerce_dr_connect(woocommerce_dr_settings('database'), 5);
        } catch (Throwable $e) {
            error_log(sprintf('wordpress: database connection failed (%s %d)', get_class($e), $e->getCode()));
            $this->dbh = null;
            if ($allow_bail) {
                $this->bail('<h1>Error establishing a database connection</h1>', 'db_connect_fail');
            }
            return false;
        }
        if (!$this->has_connected) {
            $this->init_charset();
        }
        $this->has_connected = true;
        $this->set_charset($this->dbh);
        $this->ready = true;
        $this->set_sql_mode();
        $this->select($this->dbname, $this->dbh);
        return true;
    }
}

$wpdb = new WooCommerce_DR_DB(DB_USER, DB_PASSWORD, DB_NAME, DB_HOST);
