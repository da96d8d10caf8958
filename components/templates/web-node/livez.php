<?php
// GET /livez, from this node only (nginx-livez.conf): does nginx hand requests to PHP-FPM and does
// PHP answer? The rotation agent (woocommerce-dr-rotation) asks this every second. It never touches
// the database: the database's state is the region's question, answered by /healthz.
header('Content-Type: text/plain');
header('Cache-Control: no-store');
echo "ok\n";
