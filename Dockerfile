# Tessera: one image for the server, the agent, the CLI and the demo workload (see docker-compose.yml).
#
#   docker build -t tessera:dev .
#   docker run --rm tessera:dev --help
#
# The native peer-credential addon (binding.gyp) and better-sqlite3 are compiled from source
# (.prebuild-installrc: buildFromSource=true, which better-sqlite3's prebuild-install reads), so the
# build stage has python3, make and g++; the runtime stage has only what `dist/` needs at run time.

FROM node:20-bookworm-slim AS build
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
# node-gyp compiles against the headers this Node ships with instead of downloading them.
ENV npm_config_nodedir=/usr/local
WORKDIR /app
COPY package.json package-lock.json .prebuild-installrc binding.gyp ./
COPY lib/package.json ./lib/package.json
COPY native ./native
RUN npm ci
# The sources (.dockerignore keeps out the host's node_modules, dist and build: they are made here).
COPY . .
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/build/Release/peercred.node ./build/Release/peercred.node
COPY --from=build /app/proto ./proto
COPY --from=build /app/dist ./dist
# `tessera` on the PATH; a non-root user (uid 10001) that the server and workloads run as.
# /var/lib/tessera/server is created owned by that user so a fresh named volume mounted there
# inherits the ownership. The agent runs as root (see docker-compose.yml for why and how).
RUN chmod 755 dist/cli/main.js \
  && ln -s /app/dist/cli/main.js /usr/local/bin/tessera \
  && groupadd --system --gid 10001 tessera \
  && useradd --system --uid 10001 --gid tessera --no-create-home --shell /usr/sbin/nologin tessera \
  && mkdir -p /var/lib/tessera/server /var/lib/tessera/agent /run/tessera \
  && chown tessera:tessera /var/lib/tessera/server
USER tessera
ENTRYPOINT ["tessera"]
CMD ["--help"]
