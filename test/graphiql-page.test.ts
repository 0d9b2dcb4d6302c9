import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { resolveObjectURL } from 'node:buffer';
import path from 'node:path';
import vm from 'node:vm';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GRAPHIQL_DEFAULT_DOCUMENT, graphiqlOptions } from '../src/graphql/graphiql.ts';
import { GRAPHIQL_ASSETS, GRAPHIQL_DIST, GRAPHIQL_VERSION } from '../src/graphql/graphiql-page.ts';
import { startServer, type TestServer } from './helpers/server.ts';

let server: TestServer;
let page: string;
beforeAll(async () => {
  server = await startServer();
  const res = await fetch(`${server.url}/graphql`, { headers: { accept: 'text/html' } });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/html/);
  page = await res.text();
});
afterAll(() => server?.stop());

/** The text of the page's `<script type="application/json" id=…>` element, as a browser reads it. */
function dataText(id: string): string {
  const match = new RegExp(`<script id="${id}" type="application/json">([^<]*)</script>`).exec(page);
  if (!match) throw new Error(`the page has no #${id}`);
  return match[1]!;
}
const pageJson = (id: string) => JSON.parse(dataText(id));

/**
 * Every URL the page makes the browser load: scripts and stylesheets by their attributes, the
 * workers as the page's script hands them to Monaco.
 */
function loadedUrls(): { scripts: string[]; styles: string[]; workers: Record<string, string> } {
  const attributes = (tag: string, name: string) =>
    [...page.matchAll(new RegExp(`<${tag}\\b[^>]*>`, 'g'))].flatMap(([element]) => {
      const value = new RegExp(`\\b${name}="([^"]*)"`).exec(element)?.[1];
      return value === undefined ? [] : [value];
    });
  const stylesheets = [...page.matchAll(/<link\b[^>]*>/g)].map(([e]) => e).filter((e) => /\brel="stylesheet"/.test(e));
  return {
    scripts: attributes('script', 'src'),
    styles: stylesheets.map((e) => /\bhref="([^"]*)"/.exec(e)![1]!),
    workers: pageJson('graphiql-workers'),
  };
}

/** A request sent byte for byte as written: the path is not normalized, as fetch and URL would. */
function raw(method: string, target: string, headers: Record<string, string> = {}) {
  const { hostname, port } = new URL(server.url);
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
    const req = http.request({ host: hostname, port, method, path: target, headers });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

const assetPath = (name: string) => `/graphql/graphiql/${GRAPHIQL_VERSION}/${name}`;
const onDisk = (name: string) => readFile(path.join(GRAPHIQL_DIST, name));
/** The file in the package that a URL of the page names. */
const fileOf = (url: string) => onDisk(new URL(url, server.url).pathname.replace(`/graphql/graphiql/${GRAPHIQL_VERSION}/`, ''));
const CDN = /unpkg|jsdelivr|cdnjs|esm\.sh|githubusercontent/i;

describe("GraphiQL's page", () => {
  it('loads every script, style and worker from this server, each with its content type', async () => {
    const { scripts, styles, workers } = loadedUrls();
    expect(scripts).toEqual([assetPath('yoga-graphiql.umd.js')]);
    expect(styles).toEqual([assetPath('graphiql.css')]);
    // The labels Monaco asks getWorkerUrl for.
    expect(Object.keys(workers).sort()).toEqual(['editorWorkerService', 'graphql', 'json']);
    const urls = [...scripts, ...styles, ...Object.values(workers)];
    for (const url of urls) {
      const resolved = new URL(url, `${server.url}/graphql`);
      expect(resolved.origin).toBe(server.url);
      const res = await fetch(resolved);
      expect(res.status, url).toBe(200);
      expect(res.headers.get('content-type'), url).toBe(url.endsWith('.css') ? 'text/css; charset=utf-8' : 'text/javascript; charset=utf-8');
      expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      const body = Buffer.from(await res.arrayBuffer());
      expect(body.length, url).toBeGreaterThan(0);
      expect(body.equals(await fileOf(url)), url).toBe(true);
    }
    // Nothing served that the page does not load.
    expect(urls.length).toBe(GRAPHIQL_ASSETS.size);
  });

  it('boots as a browser runs it: the workers fetched from here for Monaco, then GraphiQL with its options', async () => {
    // The page's own scripts run in order, in one global scope as in a browser; the UMD bundle
    // (served and checked above) is stood in for by what the page calls in it.
    const inline = [...page.matchAll(/<script>([^]*?)<\/script>/g)].map(([, code]) => code!);
    expect(inline.length).toBe(2);
    const root = { id: 'root' };
    let render!: (call: { element: unknown; options: unknown }) => void;
    const rendered = new Promise<{ element: unknown; options: unknown }>((resolve) => (render = resolve));
    const browser = vm.createContext({
      document: { getElementById: (id: string) => (id === 'root' ? root : { textContent: dataText(id) }) },
      fetch: (url: string) => fetch(new URL(url, `${server.url}/graphql`)),
      Blob,
      URL,
      YogaGraphiQL: { renderYogaGraphiQL: (element: unknown, options: unknown) => render({ element, options }) },
    });
    browser.self = browser;
    vm.runInContext(inline[0]!, browser);
    vm.runInContext(inline[1]!, browser);
    expect(await rendered).toEqual({ element: root, options: graphiqlOptions });
    // Monaco asks for each worker by label, and is given the bundle this server sent.
    for (const [label, url] of Object.entries(pageJson('graphiql-workers') as Record<string, string>)) {
      const workerUrl = browser.MonacoEnvironment.getWorkerUrl('workerMain.js', label) as string;
      expect(workerUrl).toMatch(/^blob:/);
      const blob = resolveObjectURL(workerUrl)!;
      expect(Buffer.from(await blob.arrayBuffer()).equals(await fileOf(url)), label).toBe(true);
    }
  });

  it('names no CDN, nor do the files it loads: no URL in it leaves this server', async () => {
    expect(page).not.toMatch(CDN);
    // An absolute URL would be another origin (this one is never written into the page).
    expect(page).not.toMatch(/\b(?:https?:|wss?:)?\/\/[a-z0-9]/i);
    for (const name of GRAPHIQL_ASSETS.keys()) expect((await onDisk(name)).toString(), name).not.toMatch(CDN);
  });

  it('hands GraphiQL our options as they are, as Yoga does: graphql-ws, the default document, the title', () => {
    expect(pageJson('graphiql-options')).toEqual(graphiqlOptions);
    expect(pageJson('graphiql-options').defaultQuery).toBe(GRAPHIQL_DEFAULT_DOCUMENT);
    expect(page).toContain(`<title>${graphiqlOptions.title}</title>`);
    // No text of the document can end the element early.
    expect(page).not.toContain('<accessToken>');
  });

  it('serves nothing outside its list of files', async () => {
    const refused = [
      '/graphql/graphiql/../../package.json',
      `/graphql/graphiql/${GRAPHIQL_VERSION}/../../../package.json`,
      `/graphql/graphiql/${GRAPHIQL_VERSION}/..%2F..%2F..%2Fpackage.json`,
      `/graphql/graphiql/${GRAPHIQL_VERSION}/%2e%2e/package.json`,
      '/graphql/graphiql/nope.js',
      `/graphql/graphiql/${GRAPHIQL_VERSION}/nope.js`,
      // In the package, but not a file the page loads.
      `/graphql/graphiql/${GRAPHIQL_VERSION}/yoga-graphiql.es.js`,
      `/graphql/graphiql/${GRAPHIQL_VERSION}/monacoeditorwork/`,
      `/graphql/graphiql/${GRAPHIQL_VERSION}/`,
      // Another version than the one installed.
      '/graphql/graphiql/0.0.1/yoga-graphiql.umd.js',
      '/graphql/graphiql/yoga-graphiql.umd.js',
    ];
    for (const target of refused) {
      const res = await raw('GET', target);
      expect(res.status, target).toBe(404);
      expect(res.body.toString(), target).not.toMatch(/"(name|version|dependencies)":/);
    }
  });

  it('answers HEAD as GET without the body, and refuses other methods', async () => {
    const name = 'graphiql.css';
    const size = (await onDisk(name)).length;
    const head = await raw('HEAD', assetPath(name));
    expect(head.status).toBe(200);
    expect(head.headers['content-type']).toBe('text/css; charset=utf-8');
    expect(head.headers['content-length']).toBe(String(size));
    expect(head.body.length).toBe(0);
    expect((await raw('HEAD', `/graphql/graphiql/${GRAPHIQL_VERSION}/nope.css`)).status).toBe(404);
    const post = await raw('POST', assetPath(name));
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
  });

  it('sends a file gzipped to a client that accepts it, and not to one that does not', async () => {
    const name = 'yoga-graphiql.umd.js';
    const file = await onDisk(name);
    const zipped = await raw('GET', assetPath(name), { 'accept-encoding': 'br;q=1.0, gzip;q=0.8, *;q=0.1' });
    expect(zipped.headers['content-encoding']).toBe('gzip');
    expect(zipped.headers.vary).toMatch(/accept-encoding/i);
    expect(Number(zipped.headers['content-length'])).toBe(zipped.body.length);
    expect(zipped.body.length).toBeLessThan(file.length / 2);
    expect(gunzipSync(zipped.body).equals(file)).toBe(true);
    for (const encoding of [undefined, 'identity', 'gzip;q=0', '*, gzip;q=0', 'br']) {
      const plain = await raw('GET', assetPath(name), encoding ? { 'accept-encoding': encoding } : {});
      expect(plain.headers['content-encoding'], encoding).toBeUndefined();
      expect(plain.body.equals(file), encoding).toBe(true);
    }
  });

  it('lets a browser revalidate with the ETag instead of downloading again', async () => {
    for (const encoding of ['gzip', 'identity']) {
      const first = await raw('GET', assetPath('graphiql.css'), { 'accept-encoding': encoding });
      const etag = first.headers.etag!;
      expect(etag).toContain(GRAPHIQL_VERSION);
      const again = await raw('GET', assetPath('graphiql.css'), { 'accept-encoding': encoding, 'if-none-match': etag });
      expect(again.status).toBe(304);
      expect(again.body.length).toBe(0);
    }
  });
});
