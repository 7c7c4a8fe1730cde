# A local stand-in for the official redis:7 image, for hosts that cannot pull (the CI machines): Debian's Redis
# 7.0, run as the redis user with /data as its working directory, like the official image. Test-only: the
# compose file names it through REDIS_IMAGE and passes the whole `redis-server …` command.
ARG BASE=aigc-base:bookworm
FROM ${BASE}
RUN apt-get update && apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/* \
    && install -d -o redis -g redis /data
USER redis
WORKDIR /data
VOLUME /data
CMD ["redis-server"]
