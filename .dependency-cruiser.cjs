/**
 * Import rules (`npm run check:imports`, run by .ci/run): no file imports itself back through
 * others, and each folder imports only the folders below it, so folders cannot form cycles.
 * Lowest first; a folder may import its own files and anything listed before it.
 */
const layers = [
  ['config', '^src/config\\.ts$|^src/generated/'],
  ['lib', '^src/lib/'],
  ['storage', '^src/storage/'],
  ['services', '^src/services/'],
  ['modules/viewer', '^src/modules/viewer/'],
  ['schema', '^src/schema/'],
  // The HTTP policy every surface applies (CORS, forwarded headers, request ids, limits).
  ['http', '^src/http/'],
  // Domain modules, each building only on those before it.
  ['modules/presence', '^src/modules/presence/'],
  ['modules/users', '^src/modules/users/'],
  ['modules/admin', '^src/modules/admin/'],
  ['modules/auth', '^src/modules/auth/'],
  ['modules/conversations', '^src/modules/conversations/'],
  ['modules/files', '^src/modules/files/'],
  ['modules/push', '^src/modules/push/'],
  ['modules/messages', '^src/modules/messages/'],
  ['modules/calls', '^src/modules/calls/'],
  ['modules/live', '^src/modules/live/'],
  // The GraphQL API as served: the schema's assembly, the Yoga envelope and its limits.
  ['graphql', '^src/graphql/'],
  ['gateway', '^src/gateway/'],
  ['realtime', '^src/realtime/'],
  ['transports', '^src/transports/'],
  ['compat', '^src/compat/'],
  ['app', '^src/app\\.ts$|^src/main\\.ts$'],
];

const above = (i) => layers.slice(i + 1).map(([, path]) => path).join('|');

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'A file that imports itself back through others: split what both need into one place.',
      from: {},
      to: { circular: true },
    },
    ...layers.slice(0, -1).map(([name, path], i) => ({
      name: `layer-${name}`,
      severity: 'error',
      comment: `${name} builds only on the folders below it (.dependency-cruiser.cjs lists them in order).`,
      from: { path },
      to: { path: above(i) },
    })),
    {
      name: 'no-unknown-folder',
      severity: 'error',
      comment: 'Every folder of src/ has its place in the layers; add a new one to the list.',
      from: { path: '^src/', pathNot: layers.map(([, path]) => path).join('|') },
      to: {},
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    includeOnly: '^src/',
    exclude: { path: '^src/generated/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
