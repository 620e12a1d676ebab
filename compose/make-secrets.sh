#!/bin/sh
# Makes the secret files compose.yaml names, each a fresh random value, in DIR (default:
# compose/secrets beside this script). An existing file is kept, so running it again
# changes nothing. The folder is mode 0700 (only you, on this machine); the files are
# 0644 because the containers read them as their own non-root users.
set -eu
dir="${1:-$(dirname "$0")/secrets}"
mkdir -p "$dir"
chmod 0700 "$dir"
for name in postgres_password grafana_admin_password \
    node_nl_api_token node_ke_api_token node_us_api_token \
    node_nl_key_passphrase node_ke_key_passphrase node_us_key_passphrase; do
    file="$dir/$name"
    [ -e "$file" ] && continue
    # 32 random bytes, base64 without the characters a URL or TOML would need escaped.
    head -c 32 /dev/urandom | base64 | tr -d '\n/+=' > "$file.new"
    chmod 0644 "$file.new"
    mv "$file.new" "$file"
    echo "made $file"
done
