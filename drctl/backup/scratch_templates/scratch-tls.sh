#!/bin/sh
# drctl-scratch-tls DIR ADDRESS...: mint this scratch server's TLS certificate for the addresses it
# really has, with the one-use CA drctl put in DIR (ca.pem, ca-key.pem) through the user data.
# drctl cannot know a Linode's address before the Linode exists, and it verifies the server by
# address; so the server signs its own certificate, then destroys the CA key: nothing else can
# ever be signed by that CA, which drctl trusts for this one server only.
set -eu
dir=$1
shift
[ $# -gt 0 ] || { echo "drctl-scratch-tls: no address to certify" >&2; exit 2; }
cd "$dir"
san=""
for address in "$@"; do
    san="${san:+$san,}IP:$address"
done
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server-key.pem \
    -out server.csr -subj "/CN=$1" 2>/dev/null
printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$san" > san.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -out server-cert.pem \
    -days 30 -extfile san.ext 2>/dev/null
rm -f ca-key.pem ca.srl server.csr san.ext
chmod 0600 server-key.pem
