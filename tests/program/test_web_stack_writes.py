"""Writes through WordPress's own database connection (wp-content/db.php), served by the web-stack
tier (tests/support/web_stack.py): a write is applied at most once, however long it waits."""

import json
import threading

import pytest

from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

# A row lock held this long: more than any client read timeout the connection ever had (5 s), as a
# busy shop's stock row can be held by a slow checkout.
LOCK_SECONDS = 12

# The stimulus: one `UPDATE ... = value + 1` through wpdb, as WooCommerce decrements stock.
INCREMENT_PLUGIN = """<?php
if (($_GET['web-stack'] ?? '') === 'increment') {
    global $wpdb;
    $result = $wpdb->query('UPDATE web_stack_counter SET value = value + 1 WHERE id = 1');
    header('Content-Type: application/json');
    echo json_encode(['result' => $result, 'error' => $wpdb->last_error]);
    exit;
}
"""


@pytest.fixture
def counter(web_primary, web_stack_databases):
    primary = web_stack_databases.primary
    primary.execute("CREATE TABLE woocommerce.web_stack_counter (id INT PRIMARY KEY, value INT NOT NULL)",
                    "INSERT INTO woocommerce.web_stack_counter VALUES (1, 0)")
    web_primary.add_mu_plugin("web-stack-increment", INCREMENT_PLUGIN)
    yield primary
    primary.execute("DROP TABLE woocommerce.web_stack_counter")


def waiting_increments(primary) -> list[tuple]:
    """(seconds waiting,) of every increment the server is still running."""
    return primary.query("SELECT time FROM information_schema.processlist "
                         "WHERE info LIKE 'UPDATE web_stack_counter%'")


def test_an_increment_held_by_a_row_lock_for_12_s_is_applied_exactly_once(web_primary, counter):
    holder = counter.connect()
    holder.begin()
    with holder.cursor() as cursor:
        cursor.execute("SELECT value FROM woocommerce.web_stack_counter WHERE id = 1 FOR UPDATE")
    answers = []
    request = threading.Thread(target=lambda: answers.append(
        web_primary.get("/?web-stack=increment", https=True, timeout=120)))
    request.start()
    try:
        # The lock is released once some increment has waited LOCK_SECONDS on it.
        wait_until(lambda: any(seconds >= LOCK_SECONDS for (seconds,) in waiting_increments(counter)),
                   timeout=LOCK_SECONDS + 60, what=f"an increment waiting {LOCK_SECONDS} s on the row lock")
    finally:
        holder.commit()
        holder.close()
    request.join(timeout=120)
    wait_until(lambda: not waiting_increments(counter), what="every increment finished")

    [response] = answers
    assert response.status == 200, response.body
    assert json.loads(response.body) == {"result": 1, "error": ""}
    assert counter.query("SELECT value FROM woocommerce.web_stack_counter WHERE id = 1") == [(1,)]
