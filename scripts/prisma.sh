#!/bin/sh
# Runs the Prisma CLI without its native engines, which cannot be downloaded here. The
# Rust-free client never loads them, but `prisma generate` insists that the files exist, so
# any existing file will do. `migrate diff` runs on the WASM engine through prisma.config.ts
# and needs a reachable PostgreSQL (DATABASE_URL, by default the local one).
cd "$(dirname "$0")/.." || exit 1
export PRISMA_QUERY_ENGINE_LIBRARY="$PWD/package.json"
export PRISMA_SCHEMA_ENGINE_BINARY="$PWD/package.json"
export PRISMA_HIDE_UPDATE_MESSAGE=1
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
exec node node_modules/prisma/build/index.js "$@"
