#!/bin/bash
# First-boot setup of a woocommerce-dr MySQL Linode, run once by cloud-init (runcmd) after the
# packages and the deferred files (settings, TLS) are in place. Safe to run again by hand: the
# bootstrap checks before it acts and does nothing on a replica that already replicates.
# Outcome: /var/lib/drctl/{primary,replica}-status.json; log: /var/log/woocommerce-dr-db-setup.log
set -euo pipefail

readonly config=/etc/woocommerce-dr/bootstrap.json
readonly code=/usr/local/lib/woocommerce-dr
readonly log=/var/log/woocommerce-dr-db-setup.log

exec >>"${log}" 2>&1
echo "--- $(date --utc +%FT%TZ) woocommerce-dr database setup"

# The package started MySQL with its stock settings; restart to apply ours (GTIDs, binary log,
# TLS, server id, read-only on replicas).
systemctl restart mysql

ready=no
for _ in $(seq 1 60); do
  if mysqladmin --protocol=socket ping >/dev/null 2>&1; then
    ready=yes
    break
  fi
  sleep 1
done
if [[ "${ready}" != yes ]]; then
  echo "MySQL did not come up within 60 s; see journalctl -u mysql" >&2
  exit 1
fi

mkdir -p /var/lib/drctl
PYTHONPATH="${code}" exec python3 -m drctl.mysql.bootstrap "${config}"
