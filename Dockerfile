# Kiln's image: kiln-server and the kiln CLI on Debian bookworm-slim, built from this checkout
# (./scripts/container build; README "Containers and Kubernetes").
#
# The server keeps its state in the volume /var/lib/kiln, listens for gRPC on 50051 and HTTP
# (/metrics, /healthz, /readyz, the API by Connect, job events and the card editor, which
# scripts/container builds into client/web/dist first) on 8080, logs JSON lines, and - being
# reachable from outside
# the container - refuses to start without authentication: mount a tokens file at
# /etc/kiln/tokens (kiln-server --hash_token makes its lines), or set KILN_TLS_* for mutual TLS,
# or KILN_INSECURE=true. Every flag is also a KILN_* variable (kiln-server --help).

FROM debian:bookworm AS build
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      build-essential cmake ninja-build pkg-config \
      libgrpc++-dev libgrpc-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler \
      libabsl-dev libdnnl-dev ocl-icd-opencl-dev zlib1g-dev \
      nlohmann-json3-dev libsqlite3-dev libssl-dev libcpp-httplib-dev libhdf5-dev libzip-dev \
      libseccomp-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DKILN_BUILD_TESTS=OFF \
      -DKILN_BUILD_BENCH=OFF >/dev/null \
    && ninja -C /build kiln-server kiln-file-reader kiln \
    && strip /build/server/kiln-server /build/server/kiln-file-reader /build/client/kiln
# The runtime packages are the ones that hold the libraries the binaries load.
RUN ldd /build/server/kiln-server /build/server/kiln-file-reader /build/client/kiln | awk '$2 == "=>" && $3 ~ /^\// {print $3}' \
    | sort -u | xargs readlink -f | xargs dpkg -S | cut -d: -f1 | sort -u > /build/runtime-packages

FROM debian:bookworm-slim
COPY --from=build /build/runtime-packages /tmp/runtime-packages
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
         $(cat /tmp/runtime-packages) \
    && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages \
    && groupadd --system --gid 10001 kiln \
    && useradd --system --uid 10001 --gid kiln --home-dir /var/lib/kiln --no-create-home kiln \
    && mkdir -p /var/lib/kiln /etc/kiln && chown kiln:kiln /var/lib/kiln
COPY --from=build /build/server/kiln-server /build/server/kiln-file-reader /build/client/kiln \
     /usr/local/bin/
COPY client/web/dist /usr/share/kiln/web
ENV KILN_LISTEN=0.0.0.0:50051 \
    KILN_HTTP_LISTEN=0.0.0.0:8080 \
    KILN_WEB_ROOT=/usr/share/kiln/web \
    KILN_STATE_DIR=/var/lib/kiln \
    KILN_AUTH_TOKENS_FILE=/etc/kiln/tokens \
    KILN_LOG_FORMAT=json \
    KILN_SHUTDOWN_GRACE=10s
USER kiln:kiln
VOLUME /var/lib/kiln
EXPOSE 50051 8080
# SIGTERM drains: jobs checkpoint and end INTERRUPTED, in-flight calls get --shutdown_grace.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --timeout=3s --start-period=60s --retries=3 \
  CMD ["kiln", "health", "--server=127.0.0.1:50051"]
ENTRYPOINT ["kiln-server"]
