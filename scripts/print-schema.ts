// `npm run schema`: writes schema.graphql from the Pothos code; `--check` fails when it is stale.
import { readFile, writeFile } from 'node:fs/promises';
import { printSchema } from 'graphql';
import { schema } from '../src/graphql/schema.ts';

const file = new URL('../schema.graphql', import.meta.url);
const text = `${printSchema(schema)}\n`;
if (process.argv.includes('--check')) {
  const current = await readFile(file, 'utf8').catch(() => '');
  if (current !== text) {
    console.error('schema.graphql is stale: run `npm run schema` and commit it');
    process.exit(1);
  }
  console.log('schema.graphql is current');
} else {
  await writeFile(file, text);
  console.log('wrote schema.graphql');
}
