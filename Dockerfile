# sledlog node image: `docker build -t sledlog .` then `docker run -v sledlog-data:/data -p 7400:7400
# -e SLEDLOG_TOKEN=... sledlog` (the default command is `sledlog node`; any other command works too,
# e.g. `docker run --rm -v sledlog-data:/data sledlog id`). docker-compose.yml runs a 3-node cluster.

# Build stage: compile the TypeScript sources with the dev dependencies.
FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# Runtime stage: production dependencies and the compiled output only.
FROM node:20-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist/src ./dist/src
# `sledlog` on the PATH for `docker exec`; /data owned by the unprivileged user the node runs as
# (a fresh named volume copies this ownership, so the key file can be created with mode 0600).
RUN chmod +x /app/dist/src/cli/bin.js \
 && ln -s /app/dist/src/cli/bin.js /usr/local/bin/sledlog \
 && mkdir -p /data && chown node:node /data
USER node
ENV SLEDLOG_DATA=/data SLEDLOG_HOST=0.0.0.0 SLEDLOG_PORT=7400
VOLUME ["/data"]
EXPOSE 7400
# The node shuts down gracefully on SIGTERM (queued ingest events written, log closed).
STOPSIGNAL SIGTERM
# The image has no curl: node asks GET /healthz on the node's own port on loopback, over HTTPS
# when it serves TLS (its certificate names the service, not 127.0.0.1, so this liveness check of
# itself skips verification).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "const m = require(process.env.SLEDLOG_TLS_CERT ? 'https' : 'http'); m.get({ host: '127.0.0.1', port: process.env.SLEDLOG_PORT || 7400, path: '/healthz', rejectUnauthorized: false, timeout: 4000 }, (r) => process.exit(r.statusCode === 200 ? 0 : 1)).on('error', () => process.exit(1)).on('timeout', () => process.exit(1))"]
ENTRYPOINT ["node", "/app/dist/src/cli/bin.js"]
CMD ["node"]
