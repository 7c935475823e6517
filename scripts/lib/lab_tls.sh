# shellcheck shell=bash
# lab_tls.sh - the certificates and the JWT key of the servers of
# scripts/services.sh (sourced by it).  Each file is made once and kept
# while it is valid, so a restart keeps the running servers; the caller
# restarts a server when a flag below is set.
#
# The caller sets TLS (the certificate folder), JWT_KEY_DIR, JWT_AZP and
# JWT_KID, and defines say and die.
#
# Files (all in $TLS unless said otherwise):
#   ca.pem/.key           the test CA (EC P-256) that POPFERRY_TEST_CA_FILE
#                         names.
#   server.pem/.key       the servers' certificate it signed: CN localhost,
#                         SAN localhost, 127.0.0.1, ::1, serverAuth.
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

# The flags services.sh reads; before the first command, this directive
# holds for the whole file, where they are set.
# shellcheck disable=SC2034
TLS_CHANGED='' SELFSIGNED_CHANGED='' CLIENT_CA_CHANGED=''

# tls_valid NAME [CA]: $TLS/NAME.pem and .key exist, the certificate is
# valid for another day and, given CA, $TLS/CA.pem signed it.
tls_valid() {
    local pem=$TLS/$1.pem
    [[ -s $pem && -s $TLS/$1.key ]] || return 1
    [[ -z ${2:-} ]] || openssl verify -CAfile "$TLS/$2.pem" "$pem" >/dev/null 2>&1 || return 1
    openssl x509 -in "$pem" -noout -checkend 86400 >/dev/null
}

# tls_ca NAME CN: $TLS/NAME.pem/.key, a CA (EC P-256) named CN, unless a
# valid one is there.  Sets TLS_MADE=1 if it made one, else empty.
tls_ca() {
    local name=$1 cn=$2
    TLS_MADE=
    tls_valid "$name" && return 0
    say "generating $cn"
    # rustls/webpki want a real CA: basicConstraints CA:TRUE + keyCertSign.
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
        -nodes -days 3650 -subj "/CN=$cn" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout "$TLS/$name.key" -out "$TLS/$name.pem" 2>/dev/null
    chmod 600 "$TLS/$name.key"
    chmod 644 "$TLS/$name.pem"
    TLS_MADE=1
}

# tls_leaf NAME CA CN KEY_MODE EXTENSION...: $TLS/NAME.pem/.key, an
# end-entity certificate (EC P-256) named CN that CA signed, with the
# EXTENSIONs (openssl x509v3 config lines) besides "not a CA, signatures
# only", unless a valid one CA signed is there.  Sets TLS_MADE like tls_ca.
tls_leaf() {
    local name=$1 ca=$2 cn=$3 key_mode=$4
    shift 4
    TLS_MADE=
    tls_valid "$name" "$ca" && return 0
    say "generating $name certificate (CN $cn)"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -subj "/CN=$cn" -keyout "$TLS/$name.key" -out "$TLS/$name.csr" 2>/dev/null
    printf '%s\n' "basicConstraints = critical, CA:FALSE" \
        "keyUsage = critical, digitalSignature" "$@" \
        "subjectKeyIdentifier = hash" "authorityKeyIdentifier = keyid" >"$TLS/$name.ext"
    openssl x509 -req -in "$TLS/$name.csr" -CA "$TLS/$ca.pem" -CAkey "$TLS/$ca.key" \
        -set_serial "0x$(openssl rand -hex 15)" -days 3650 \
        -extfile "$TLS/$name.ext" -out "$TLS/$name.pem" 2>/dev/null
    chmod "$key_mode" "$TLS/$name.key"
    chmod 644 "$TLS/$name.pem"
    rm -f "$TLS/$name.csr"
    TLS_MADE=1
}

gen_tls() {   # sets TLS_CHANGED=1 if the server certificate was (re)made
    mkdir -p "$TLS"
    chmod 755 "$TLS"
    tls_ca ca "popferry test CA"
    tls_leaf server ca localhost 600 "extendedKeyUsage = serverAuth" \
        "subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1"
    TLS_CHANGED=$TLS_MADE
}

gen_selfsigned() {   # sets SELFSIGNED_CHANGED=1 if (re)made
    local pem=$TLS/selfsigned.pem key=$TLS/selfsigned.key
    tls_valid selfsigned && return 0
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

gen_client_cert() {   # sets CLIENT_CA_CHANGED=1 if the client CA was (re)made
    tls_ca client-ca "popferry test client CA"
    CLIENT_CA_CHANGED=$TLS_MADE
    tls_leaf client client-ca popferry-test-client 644 "extendedKeyUsage = clientAuth"
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
