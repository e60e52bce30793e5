#!/bin/sh
# Makes the TLS credentials the tests use, with certtool and psktool
# (gnutls-bin), in directory OUT (created; ECDSA keys, so it takes well
# under a second):
#
#   OUT/server/          ca-cert.pem server-cert.pem server-key.pem
#                        (CA 1; CN=localhost, DNS localhost, IP 127.0.0.1)
#   OUT/client/          ca-cert.pem client-cert.pem client-key.pem
#                        (CA 1; DN C=GB,O=Dataplane Test,CN=client1)
#   OUT/client2/         the same with CN=client2 (another identity)
#   OUT/client-nocert/   ca-cert.pem only (trusts the server, proves nothing)
#   OUT/client-otherca/  ca-cert.pem of CA 1, client cert and key from CA 2
#   OUT/client-wrongca/  ca-cert.pem of CA 2 (does not trust the server)
#   OUT/server-expired/  as server/, with a certificate that expired in 2011
#   OUT/server-otherca/  CA 1's ca-cert.pem with a server cert from CA 2
#   OUT/psk/             keys.psk: alice and bob
#   OUT/psk-alice/       keys.psk: alice only (what a client holds)
#   OUT/psk-wrong/       keys.psk: alice with another key
#
# Usage: tests/tls-certs.sh OUT
set -eu
out=${1:?usage: tls-certs.sh OUT}
for tool in certtool psktool; do
    command -v $tool >/dev/null ||
        { echo "tls-certs.sh: $tool not found (install gnutls-bin)" >&2; exit 1; }
done
mkdir -p "$out"
cd "$out"
t=$(mktemp -d ./.work.XXXXXX)

key() {
    certtool --generate-privkey --key-type=ecdsa --outfile "$1" 2>/dev/null
}

# ca NAME: a self-signed CA in $t/NAME-{key,cert}.pem
ca() {
    key "$t/$1-key.pem"
    printf 'cn = Dataplane Test %s\nca\ncert_signing_key\ncrl_signing_key\nexpiration_days = 3650\n' \
        "$1" >"$t/$1.info"
    certtool --generate-self-signed --load-privkey "$t/$1-key.pem" \
        --template "$t/$1.info" --outfile "$t/$1-cert.pem" 2>/dev/null
}

# cert CA DIR ROLE TEMPLATE-LINES: ROLE-{cert,key}.pem in DIR, from CA
cert() {
    ca_name=$1 dir=$2 role=$3
    shift 3
    mkdir -p "$dir"
    key "$dir/$role-key.pem"
    printf '%s\n' "$@" >"$t/$role.info"
    certtool --generate-certificate --load-privkey "$dir/$role-key.pem" \
        --load-ca-certificate "$t/$ca_name-cert.pem" \
        --load-ca-privkey "$t/$ca_name-key.pem" \
        --template "$t/$role.info" --outfile "$dir/$role-cert.pem" 2>/dev/null
}

ca ca1
ca ca2
server="cn = localhost|dns_name = localhost|ip_address = 127.0.0.1|tls_www_server|encryption_key|signing_key"
client_tmpl() {
    echo "country = GB|organization = Dataplane Test|cn = $1|tls_www_client|encryption_key|signing_key"
}
lines() {
    # Splits a |-separated template into lines for cert().
    echo "$1" | tr '|' '\n'
}

IFS='
'
cert ca1 server server $(lines "$server|expiration_days = 3650")
cert ca1 server-expired server $(lines "$server|activation_date = \"2010-01-01 00:00:00\"|expiration_date = \"2011-01-01 00:00:00\"")
cert ca2 server-otherca server $(lines "$server|expiration_days = 3650")
cert ca1 client client $(lines "$(client_tmpl client1)|expiration_days = 3650")
cert ca1 client2 client $(lines "$(client_tmpl client2)|expiration_days = 3650")
cert ca2 client-otherca client $(lines "$(client_tmpl client1)|expiration_days = 3650")
unset IFS
mkdir -p client-nocert client-wrongca
for d in server server-expired server-otherca client client2 client-nocert client-otherca; do
    cp "$t/ca1-cert.pem" "$d/ca-cert.pem"
done
cp "$t/ca2-cert.pem" client-wrongca/ca-cert.pem

mkdir -p psk psk-alice psk-wrong
psktool -u alice -p psk/keys.psk >/dev/null 2>&1
psktool -u bob -p psk/keys.psk >/dev/null 2>&1
grep '^alice:' psk/keys.psk >psk-alice/keys.psk
psktool -u alice -p psk-wrong/keys.psk >/dev/null 2>&1
rm -rf "$t"
