#!/usr/bin/env bash
# The compose stack's Redis password, made once on the first `up` into the `secrets` volume:
#   redis-password    the password alone (IMGCLF_REDIS_PASSWORD_FILE of web and worker)
#   redis-auth.conf   `requirepass <password>`, which Redis's config includes
# Kept across restarts and `down`; `docker compose down -v` forgets it with the data. The files
# are readable by the stack's users (Redis and the service run as different users); only the
# stack's containers mount the volume.
set -euo pipefail
cd "${1:?the secrets folder}"
if [ ! -s redis-password ]; then
    password=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
    printf '%s\n' "$password" > redis-password.new
    mv redis-password.new redis-password
fi
printf 'requirepass %s\n' "$(head -n 1 redis-password)" > redis-auth.conf.new
chmod 0644 redis-password redis-auth.conf.new
mv redis-auth.conf.new redis-auth.conf
echo "Redis password ready in the secrets volume"
