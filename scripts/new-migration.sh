#!/bin/sh
# Writes a new migration folder from the difference between the migrations so far and
# prisma/schema.prisma:  npm run db:migration -- add_something
set -e
name="${1:?usage: npm run db:migration -- <name>}"
cd "$(dirname "$0")/.."
dir="prisma/migrations/$(date -u +%Y%m%d%H%M%S)_$name"
mkdir -p "$dir"
sh scripts/prisma.sh migrate diff --from-migrations prisma/migrations --to-schema-datamodel prisma/schema.prisma \
  --shadow-database-url "${SHADOW_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}" --script > "$dir/migration.sql"
echo "wrote $dir/migration.sql"
