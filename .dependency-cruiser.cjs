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
  // Events recorded with the changes they describe, and the relay that hands them to consumers.
  ['modules/outbox', '^src/modules/outbox/'],
  ['modules/users', '^src/modules/users/'],
  ['modules/admin', '^src/modules/admin/'],
  ['modules/auth', '^src/modules/auth/'],
  ['modules/conversations', '^src/modules/conversations/'],
  ['modules/files', '^src/modules/files/'],
  ['modules/push', '^src/modules/push/'],
  ['modules/messages', '^src/modules/messages/'],
  ['modules/calls', '^src/modules/calls/'],
  ['modules/live', '^src/modules/live/'],
  // Outbox consumers built on everything above (web push sits with its subscriptions, above).
  ['modules/webhooks', '^src/modules/webhooks/'],
  ['modules/mqtt', '^src/modules/mqtt/'],
  // The GraphQL API as served: the schema's assembly, the Yoga envelope and its limits.
  ['graphql', '^src/graphql/'],
  ['gateway', '^src/gateway/'],
  ['realtime', '^src/realtime/'],
  ['transports', '^src/transports/'],
  ['compat', '^src/compat/'],
  ['app', '^src/app\\.ts$|^src/main\\.ts$'],
];

/**
 * What a module offers the others (and the dialects): the files listed here. Everything else
 * in a module is its own; app.ts and graphql/ (which assemble the schema and the services)
 * may reach any file.
 */
const publicSurface = {
  viewer: ['viewer', 'sessions'],
  users: ['schema', 'snapshot', 'rules'],
  conversations: ['access', 'schema', 'service'],
  files: ['schema', 'snapshot'],
  messages: ['schema', 'snapshot'],
  calls: ['schema'],
  outbox: ['consumer', 'outbox'],
};
const publicPaths = Object.entries(publicSurface).flatMap(([module, files]) => files.map((file) => `^src/modules/${module}/${file}\\.ts$`));

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
      name: 'module-surface',
      severity: 'error',
      comment: "A module uses another module only through the files that one offers (publicSurface in .dependency-cruiser.cjs).",
      from: { path: '^src/modules/([^/]+)/' },
      to: { path: '^src/modules/', pathNot: ['^src/modules/$1/', ...publicPaths] },
    },
    {
      name: 'module-surface-outside',
      severity: 'error',
      comment: "Outside the modules, only app.ts and graphql/ (which assemble them) reach past a module's offered files.",
      from: { path: '^src/', pathNot: '^src/modules/|^src/graphql/|^src/app\\.ts$' },
      to: { path: '^src/modules/', pathNot: publicPaths },
    },
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
