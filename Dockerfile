# syntax=docker/dockerfile:1
# The broker image: every service, chosen by the command (`start edge|persister|dispatcher|api|all`, `migrate`).
# The services run the bundle esbuild (a production dependency) makes from the TypeScript sources (bin/build.mjs),
# built here, as root, so the unprivileged user never needs to write it.

# Dependencies only, so the layer is rebuilt when package*.json changes, not on every source edit.
FROM node:20-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM node:20-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json tsconfig.json ./
COPY bin ./bin
COPY cli ./cli
COPY libs ./libs
COPY services ./services
COPY db ./db
RUN node bin/build.mjs
USER node
# 8080 edge (/ws and health), 3000 api, 9090 persister and dispatcher health.
EXPOSE 8080 3000 9090
ENTRYPOINT ["node", "bin/broker.mjs"]
CMD ["start", "all"]
