import type { CodegenConfig } from '@graphql-codegen/cli';

// Typed operations for the tests: each `graphql(`...`)` in test/ becomes a TypedDocumentNode
// checked against schema.graphql (which `npm run schema` writes from the Pothos code).
const config: CodegenConfig = {
  schema: 'schema.graphql',
  documents: ['test/**/*.ts', '!test/**/*.d.ts', '!test/generated/**'],
  ignoreNoDocuments: true,
  emitLegacyCommonJSImports: false,
  generates: {
    'test/generated/': {
      preset: 'client',
      config: {
        scalars: { DateTime: 'string', JSON: 'unknown', ID: 'string' },
        useTypeImports: true,
        enumsAsTypes: true,
      },
      presetConfig: { fragmentMasking: false },
    },
  },
};

export default config;
