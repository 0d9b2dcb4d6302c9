import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { GraphiQLOptions } from 'graphql-yoga';

/**
 * The installed @graphql-yoga/graphiql, found as Node resolves an import from this file, so
 * that the server finds it whatever its working directory. Its package exports only its
 * entry and package.json; the built files sit in dist/ next to the latter.
 */
const manifest = createRequire(import.meta.url).resolve('@graphql-yoga/graphiql/package.json');
export const GRAPHIQL_DIST = path.join(path.dirname(manifest), 'dist');
export const GRAPHIQL_VERSION: string = JSON.parse(readFileSync(manifest, 'utf8')).version;

/** Where the page's files are served (transports/graphiql-assets.ts answers every path below it). */
export const GRAPHIQL_ASSETS_PATH = '/graphql/graphiql/';

/**
 * The package's version is part of each file's URL, so a browser may keep a file for good: an
 * upgrade changes the URLs the page names.
 */
const ASSETS_BASE = `${GRAPHIQL_ASSETS_PATH}${GRAPHIQL_VERSION}/`;

const JS = 'text/javascript; charset=utf-8';

/** The only files served, by their path under dist/, with their content types. */
export const GRAPHIQL_ASSETS: ReadonlyMap<string, string> = new Map([
  ['yoga-graphiql.umd.js', JS],
  ['graphiql.css', 'text/css; charset=utf-8'],
  ['monacoeditorwork/editor.worker.bundle.js', JS],
  ['monacoeditorwork/json.worker.bundle.js', JS],
  ['monacoeditorwork/graphql.worker..bundle.js', JS],
]);

/** The allowlisted file a path names, if it names one (the version must be the installed one). */
export function graphiqlAsset(pathname: string): { name: string; contentType: string } | null {
  if (!pathname.startsWith(ASSETS_BASE)) return null;
  const name = pathname.slice(ASSETS_BASE.length);
  const contentType = GRAPHIQL_ASSETS.get(name);
  return contentType ? { name, contentType } : null;
}

/**
 * Monaco's editors run their language services in web workers. The UMD script has no URL of
 * its own for them: it asks `MonacoEnvironment.getWorkerUrl` for one by label (these three,
 * as in Yoga's own page), and the page answers.
 */
const WORKERS = {
  editorWorkerService: 'monacoeditorwork/editor.worker.bundle.js',
  json: 'monacoeditorwork/json.worker.bundle.js',
  graphql: 'monacoeditorwork/graphql.worker..bundle.js',
};

const escapeHtml = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** JSON to place inside a <script> element: no `<` in it, so no text of it can close the element. */
const scriptJson = (value: unknown) => JSON.stringify(value).replace(/</g, '\\u003c');

/**
 * GraphiQL's page, as Yoga's `renderGraphiQL` would render it but with every script, style and
 * worker from this server (under GRAPHIQL_ASSETS_PATH) instead of unpkg, so that it works
 * offline and behind a proxy that allows no CDN. The options reach `renderYogaGraphiQL` as they
 * are, as on Yoga's page; the worker bundles are fetched and handed to Monaco as blob: URLs, as
 * there too: a worker made from a blob runs under this page's policy, where one loaded from its
 * URL would run under the (stricter) one its own response carries.
 */
export function renderGraphiQLPage(options: GraphiQLOptions): string {
  const title = escapeHtml(options.title ?? 'Yoga GraphiQL');
  const workerUrls = Object.fromEntries(Object.entries(WORKERS).map(([label, name]) => [label, ASSETS_BASE + name]));
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<link rel="icon" href="${escapeHtml(options.favicon ?? 'data:,')}">
<link rel="stylesheet" href="${ASSETS_BASE}graphiql.css">
</head>
<body id="body" class="no-focus-outline">
<noscript>GraphiQL needs JavaScript.</noscript>
<div id="root">Loading ${title}…</div>
<script id="graphiql-options" type="application/json">${scriptJson(options)}</script>
<script id="graphiql-workers" type="application/json">${scriptJson(workerUrls)}</script>
<script>
const workerUrls = JSON.parse(document.getElementById('graphiql-workers').textContent);
const workers = {};
self.MonacoEnvironment = { globalAPI: false, getWorkerUrl: (_moduleId, label) => workers[label] };
const workersReady = Promise.all(Object.entries(workerUrls).map(async ([label, url]) => {
  const res = await fetch(url);
  workers[label] = URL.createObjectURL(new Blob([await res.text()], { type: 'text/javascript' }));
}));
</script>
<script src="${ASSETS_BASE}yoga-graphiql.umd.js"></script>
<script>
workersReady.finally(() => {
  YogaGraphiQL.renderYogaGraphiQL(document.getElementById('root'), JSON.parse(document.getElementById('graphiql-options').textContent));
});
</script>
</body>
</html>
`;
}
