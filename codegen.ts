import type { CodegenConfig } from '@graphql-codegen/cli';

// Typed operations: each `graphql(`...`)` becomes a TypedDocumentNode checked against
// schema.graphql (which `npm run schema` writes from the Pothos code), so a document that
// selects a field the schema lacks fails here and in `tsc`, not when a client calls it.
// Two outputs: the tests' operations, and the dialects' (src/compat), which the server
// itself runs; `npm run generate` makes both before the server or the tests start.
const preset = {
  preset: 'client',
  config: {
    scalars: { DateTime: 'string', JSON: 'unknown', ID: 'string', Upload: 'unknown' },
    useTypeImports: true,
    enumsAsTypes: true,
  },
  // A document's result type holds the fields of the fragments it spreads.
  presetConfig: { fragmentMasking: false },
} as const;

const config: CodegenConfig = {
  schema: 'schema.graphql',
  ignoreNoDocuments: true,
  emitLegacyCommonJSImports: false,
  generates: {
    'test/generated/': { ...preset, documents: ['test/**/*.ts', '!test/**/*.d.ts', '!test/generated/**'] },
    'src/generated/compat/': { ...preset, documents: ['src/compat/**/*.ts'] },
  },
};

export default config;
