#!/bin/sh
# Stand-in for the official mariadb image's docker-entrypoint.sh (see mariadb.Dockerfile): on an empty data
# directory, create the system tables, the root password, one database and one user; then run mariadbd.
# Values are used as they are in SQL: keep them to letters, digits and -_.
set -eu
case "${1:-}" in -*|'') set -- mariadbd "$@" ;; esac
if [ "$1" = mariadbd ] && [ ! -d /var/lib/mysql/mysql ]; then
    : "${MARIADB_ROOT_PASSWORD:?MARIADB_ROOT_PASSWORD is required}"
    echo "docker-entrypoint: initialising /var/lib/mysql" >&2
    mariadb-install-db --datadir=/var/lib/mysql --auth-root-authentication-method=normal --skip-test-db \
        >/dev/null
    {
        echo "USE mysql;"
        # mariadb-install-db's password-less root@127.0.0.1, @::1 and @HOSTNAME: only the two below remain
        echo "DELETE FROM global_priv WHERE User = 'root' AND Host NOT IN ('localhost', '%');"
        echo "FLUSH PRIVILEGES;"
        echo "ALTER USER 'root'@'localhost' IDENTIFIED BY '${MARIADB_ROOT_PASSWORD}';"
        echo "CREATE USER 'root'@'%' IDENTIFIED BY '${MARIADB_ROOT_PASSWORD}';"
        echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
        if [ -n "${MARIADB_DATABASE:-}" ]; then
            echo "CREATE DATABASE IF NOT EXISTS \`${MARIADB_DATABASE}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
        fi
        if [ -n "${MARIADB_USER:-}" ]; then
            echo "CREATE USER '${MARIADB_USER}'@'%' IDENTIFIED BY '${MARIADB_PASSWORD:?MARIADB_PASSWORD is required}';"
            [ -z "${MARIADB_DATABASE:-}" ] || echo "GRANT ALL ON \`${MARIADB_DATABASE}\`.* TO '${MARIADB_USER}'@'%';"
        fi
    } | mariadbd --bootstrap --datadir=/var/lib/mysql --skip-networking >/dev/null
fi
exec "$@"
