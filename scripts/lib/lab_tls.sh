# shellcheck shell=bash
# lab_tls.sh - the certificates and the JWT key of the OAuth / client
# certificate / submission servers of scripts/services.sh (sourced by it).
# Each file is made once and kept while it is valid, so a restart keeps the
# running servers; the caller restarts a server when a flag below is set.
#
# The caller sets TLS (the certificate folder), JWT_KEY_DIR, JWT_AZP and
# JWT_KID, and defines say and die.
#
# Files (all in $TLS unless said otherwise):
#   selfsigned.pem/.key   made exactly as an administrator makes one:
#                         `openssl req -x509 -newkey rsa:2048 -nodes ...`.
#                         OpenSSL 3 gives such a certificate
#                         basicConstraints CA:TRUE (checked below, since
#                         that is the case under test: rustls/webpki refuse
#                         it as a trust anchor that is also the end entity,
#                         CaUsedAsEndEntity).  CN and SAN localhost,
#                         SAN IP 127.0.0.1 (not ::1).
#   client-ca.pem/.key    a CA for client certificates only (EC P-256).
#   client.pem/.key       a client certificate it signed (CN popferry-test-
#                         client, extendedKeyUsage clientAuth) and its key
#                         (PKCS#8 PEM).  The key is mode 0644 on purpose:
#                         tests that do not run as root must read it.
#   $JWT_KEY_DIR/$JWT_AZP/HS256/$JWT_KID
#                         the HS256 secret (32 random bytes), one line of
#                         base64; Dovecot's oauth2 key dict and the tests
#                         read this same file (mode 0644: Dovecot's auth
#                         process runs as user dovecot).

# shellcheck disable=SC2034 # read by services.sh
SELFSIGNED_CHANGED=
gen_selfsigned() {   # sets SELFSIGNED_CHANGED=1 if (re)made
    local pem=$TLS/selfsigned.pem key=$TLS/selfsigned.key
    if [[ -s $pem && -s $key ]] && openssl x509 -in "$pem" -noout -checkend 86400 >/dev/null; then
        return 0
    fi
    say "generating self-signed certificate the way admins do (openssl req -x509)"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=localhost \
        -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        -keyout "$key" -out "$pem" 2>/dev/null
    openssl x509 -in "$pem" -noout -text | grep -q 'CA:TRUE' ||
        die "$pem is not CA:TRUE: this OpenSSL does not make self-signed certificates the way the tests expect"
    chmod 600 "$key"
    chmod 644 "$pem"
    SELFSIGNED_CHANGED=1
}

# shellcheck disable=SC2034 # read by services.sh
CLIENT_CA_CHANGED=
gen_client_cert() {   # sets CLIENT_CA_CHANGED=1 if the client CA was (re)made
    if [[ ! -s $TLS/client-ca.pem || ! -s $TLS/client-ca.key ]] ||
        ! openssl x509 -in "$TLS/client-ca.pem" -noout -checkend 86400 >/dev/null; then
        say "generating client CA"
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
            -nodes -days 3650 -subj "/CN=popferry test client CA" \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" \
            -keyout "$TLS/client-ca.key" -out "$TLS/client-ca.pem" 2>/dev/null
        chmod 600 "$TLS/client-ca.key"
        chmod 644 "$TLS/client-ca.pem"
        rm -f "$TLS/client.pem"
        CLIENT_CA_CHANGED=1
    fi
    if [[ -s $TLS/client.pem && -s $TLS/client.key ]] &&
        openssl verify -CAfile "$TLS/client-ca.pem" "$TLS/client.pem" >/dev/null 2>&1 &&
        openssl x509 -in "$TLS/client.pem" -noout -checkend 86400 >/dev/null; then
        return 0
    fi
    say "generating client certificate"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -subj "/CN=popferry-test-client" -keyout "$TLS/client.key" -out "$TLS/client.csr" 2>/dev/null
    cat >"$TLS/client.ext" <<'EOF'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
    openssl x509 -req -in "$TLS/client.csr" -CA "$TLS/client-ca.pem" -CAkey "$TLS/client-ca.key" \
        -set_serial "0x$(openssl rand -hex 15)" -days 3650 \
        -extfile "$TLS/client.ext" -out "$TLS/client.pem" 2>/dev/null
    chmod 644 "$TLS/client.key" "$TLS/client.pem"
    rm -f "$TLS/client.csr"
}

jwt_key_file() { echo "$JWT_KEY_DIR/$JWT_AZP/HS256/$JWT_KID"; }

gen_jwt_key() {
    local file
    file=$(jwt_key_file)
    [[ -s $file ]] && return 0
    say "generating the HS256 JWT key"
    mkdir -p "${file%/*}"
    chmod 755 "$JWT_KEY_DIR" "$JWT_KEY_DIR/$JWT_AZP" "${file%/*}"
    openssl rand -base64 32 >"$file.new"
    chmod 644 "$file.new"
    mv -f "$file.new" "$file"
}
