#!/bin/sh
# The scratch server's one-time setup, run by cloud-init after the packages: a certificate for its
# public addresses, the settings drctl sent (TLS required, binary log), a restart, then drctl's
# account. The account's SQL holds the password: it is deleted once run.
set -eu
dir=/etc/mysql/drctl-scratch
service=$(cat "$dir/service")
addresses=$(ip -4 -o addr show scope global | awk '{split($4, a, "/"); print a[1]}')
# One argument per address: the word splitting is wanted.
# shellcheck disable=SC2086
/usr/local/sbin/drctl-scratch-tls "$dir" $addresses
chown mysql:mysql "$dir/server-key.pem"
systemctl restart "$service"
mysql --protocol=socket -u root < "$dir/account.sql"
rm -f "$dir/account.sql"
