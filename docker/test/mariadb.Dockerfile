# A local stand-in for the official mariadb:11 image, for hosts that cannot pull (the CI machines): Debian's
# MariaDB 10.11 with an entrypoint that understands the subset of the official image's interface that
# docker/compose.yaml uses (MARIADB_ROOT_PASSWORD, MARIADB_DATABASE, MARIADB_USER, MARIADB_PASSWORD; arguments
# starting with "-" go to mariadbd). Test-only: the compose file names it through MARIADB_IMAGE.
ARG BASE=aigc-base:bookworm
FROM ${BASE}
RUN apt-get update && apt-get install -y --no-install-recommends mariadb-server mariadb-client \
    && rm -rf /var/lib/apt/lists/* /var/lib/mysql/* \
    && install -d -o mysql -g mysql /var/lib/mysql /run/mysqld
COPY mariadb-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
# The server never needs root: the data directory (a named volume copies this ownership) and the socket
# directory belong to mysql.
USER mysql
VOLUME /var/lib/mysql
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["mariadbd"]
