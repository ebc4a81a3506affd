#!/usr/bin/env bash
# tls_certs.sh DIR: a throwaway CA and two certificates it signed, laid
# out as nbdkit, qemu and libnbd read a certificate directory (and as
# basalt-nbd --tls-certificates does):
#   DIR/ca-cert.pem, ca-key.pem          the CA (a fresh one each run)
#   DIR/server-cert.pem, server-key.pem  CN=localhost, DNS:localhost, IP:127.0.0.1
#   DIR/client-cert.pem, client-key.pem  CN=basalt-test-client (for --tls-verify-peer)
# P-256 keys, valid two days; for tests only. The unit test test_tls and
# the integration tests both make theirs here.
set -euo pipefail
dir=${1:?usage: tls_certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
# sign NAME CN EXTENSIONS: NAME-key.pem and NAME-cert.pem, signed by the CA.
sign() {
	key "$1-key.pem"
	openssl req -new -key "$1-key.pem" -subj "/CN=$2" -out "$1.csr"
	printf '%s\n' "$3" >"$1.ext"
	openssl x509 -req -in "$1.csr" -CA ca-cert.pem -CAkey ca-key.pem -CAcreateserial -days 2 \
		-extfile "$1.ext" -out "$1-cert.pem" 2>/dev/null
	rm -f "$1.csr" "$1.ext"
}
key ca-key.pem
openssl req -new -x509 -key ca-key.pem -out ca-cert.pem -days 2 \
	-subj "/CN=basalt test CA $(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
	-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
sign server localhost "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1"
sign client basalt-test-client "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
rm -f ca-cert.srl
chmod 600 ./*-key.pem
