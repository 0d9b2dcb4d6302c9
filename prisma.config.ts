import { PrismaPg } from '@prisma/adapter-pg';
import { defineConfig } from 'prisma/config';

// The Prisma CLI is used here only for `prisma generate` and `prisma migrate diff` (see
// scripts/prisma.sh). Its native engines cannot be downloaded on our machines, so the CLI
// runs on the JS/WASM engine. Migrations are applied by our own runner (src/lib/migrate.ts).
export default defineConfig({
  experimental: { adapter: true },
  engine: 'js',
  adapter: async () => new PrismaPg({ connectionString: process.env.DATABASE_URL ?? 'postgres://localhost/unused' }),
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
});
