#!/bin/sh
# Writes a new migration folder with the SQL that takes the committed prisma/schema.prisma
# (HEAD) to the one in the working tree:  npm run db:migration -- add_something
# Diffing two datamodels is what works offline; `--from-migrations` would need the schema
# engine to introspect a database through the adapter, which fails (prisma/prisma#27403).
set -e
name="${1:?usage: npm run db:migration -- <name>}"
cd "$(dirname "$0")/.."
old="$(mktemp)"
trap 'rm -f "$old"' EXIT
git show HEAD:prisma/schema.prisma > "$old"
dir="prisma/migrations/$(date -u +%Y%m%d%H%M%S)_$name"
mkdir -p "$dir"
sh scripts/prisma.sh migrate diff --from-schema-datamodel "$old" --to-schema-datamodel prisma/schema.prisma --script > "$dir/migration.sql"
echo "wrote $dir/migration.sql"
