FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
# Dev dependencies too: the Prisma CLI generates the client below.
RUN npm ci --include=dev --no-audit --no-fund
COPY . .
RUN npm run generate --silent
ENV HOST=0.0.0.0 PORT=4000 DATA_DIR=/data
EXPOSE 4000
# tsx runs the TypeScript sources directly: no build step to keep in sync. The node flag is
# `npm start`'s: a larger young generation (README, "Run it").
CMD ["npx", "tsx", "--max-semi-space-size=32", "src/main.ts"]
