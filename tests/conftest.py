"""Every fixture lives in tests/support/, registered here once for the whole suite."""

pytest_plugins = [
    "tests.support.program_runs",  # the stack files under the mock engine
    "tests.support.mariadb",  # real MariaDB servers on loopback
    "tests.support.runbook_support",  # `cloud`: the Cloudflare and Linode API fakes for the runbook
    "tests.support.watch_shop",  # the watchdog's HTTPS origins and Cloudflare DNS fake
    "tests.support.web_stack",  # a web node served by real nginx + PHP-FPM + WordPress
    "tests.support.archive_setup",  # point-in-time recovery: primary, replica, archive bucket, archiver
    "tests.support.scratch_machines",  # `scratch_cloud`: the Linode API fake whose Linodes are local MariaDBs
]
