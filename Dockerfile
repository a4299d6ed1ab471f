# campusgw, campusgw-ctl and campusgw-sim in a small Debian image (docker-compose.yml
# runs the example schools with it). Two stages: the build stage has the
# compilers and -dev packages; the runtime stage only the shared libraries the
# three binaries link (tests/integration/test_district.py checks this list
# against the binaries' NEEDED entries) and runs as an unprivileged user.
#
#   docker build -t campusgw .
#   docker run --rm -v $PWD/campusgw.cfg:/etc/campusgw/campusgw.cfg:ro -v campusgw-state:/var/lib/campusgw campusgw
#
# On a Raspberry Pi the gateway normally runs from the Debian packages and the
# systemd unit instead (docs/install.md); this image is for the district's
# example schools, test benches and sites that run containers anyway.

FROM debian:bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        build-essential cmake pkg-config \
        libuv1-dev libmosquitto-dev libpaho-mqtt-dev libconfig-dev libmodbus-dev \
        libjansson-dev libsqlite3-dev libsystemd-dev libcurl4-openssl-dev zlib1g-dev \
        libssl-dev libsodium-dev duktape-dev libmicrohttpd-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Release build without the unit tests (no cmocka); only the three programs.
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DGW_TESTS=OFF \
 && cmake --build /build -j"$(nproc)" --target campusgw campusgw-ctl campusgw-sim \
 && DESTDIR=/out cmake --install /build --prefix /usr --strip

FROM debian:bookworm-slim
# The runtime libraries of the -dev packages above (and CA certificates for TLS
# to the district broker and InfluxDB; tzdata for site.timezone and schedules).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libuv1 libmosquitto1 libpaho-mqtt1.3 libconfig9 libmodbus5 \
        libjansson4 libsqlite3-0 libsystemd0 libcurl4 zlib1g \
        libssl3 libsodium23 libduktape207 libmicrohttpd12 \
        ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/*
# A fixed uid, so secret files on the host can be given to it (make-passwords --docker).
RUN groupadd --system --gid 10001 campusgw \
 && useradd --system --uid 10001 --gid campusgw --home-dir /var/lib/campusgw --create-home \
        --shell /usr/sbin/nologin campusgw
COPY --from=build /out/usr/bin/campusgw /out/usr/bin/campusgw-ctl /out/usr/bin/campusgw-sim /usr/bin/
COPY --from=build /out/etc/campusgw/ /etc/campusgw/
USER campusgw
WORKDIR /var/lib/campusgw
# state.db (the outbox: what has not reached every sink yet) and the daily logs.
VOLUME ["/var/lib/campusgw"]
# LoRa packet forwarders (GWMP) and the status page, when the config enables them.
EXPOSE 1700/udp 8080/tcp
CMD ["campusgw", "-c", "/etc/campusgw/campusgw.cfg"]
