import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { restDialects, socketDialects } from '../src/compat/dialects.ts';
import { whereToGo } from '../src/transports/home.ts';
import { spawnServer } from './helpers/process.ts';
import { startServer, type TestServer } from './helpers/server.ts';

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(() => server?.stop());

describe('the address itself', () => {
  it('answers a browser with a page that links GraphiQL, /health and every dialect mount', async () => {
    const res = await fetch(`${server.url}/`, { headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const html = await res.text();
    expect(html).toContain(`<a href="${server.url}/graphql">Open GraphiQL</a>`);
    expect(html).toContain(`<a href="${server.url}/health">`);
    for (const dialect of restDialects) expect(html).toContain(`<a href="${server.url}${dialect.mount}">`);
  });

  it('answers anything else with JSON whose links work', async () => {
    const res = await fetch(`${server.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const body = await res.json();
    expect(body).toMatchObject({
      graphql: `${server.url}/graphql`,
      graphiql: `${server.url}/graphql`,
      subscriptions: { url: server.wsUrl, protocol: 'graphql-transport-ws' },
      health: `${server.url}/health`,
    });
    expect(body.dialects).toEqual(
      restDialects.map((d) => ({
        name: d.name,
        rest: `${server.url}${d.mount}`,
        socketIo: socketDialects.some((s) => s.namespace === d.mount) ? `${server.url}${d.mount}` : null,
        webSocket: null,
      })),
    );
    expect((await fetch(body.health)).status).toBe(200);
    const graphiql = await fetch(body.graphiql, { headers: { accept: 'text/html' } });
    expect(await graphiql.text()).toMatch(/graphiql/i);
  });

  it('uses the origin a trusted proxy forwarded (and only then), and refuses other methods', async () => {
    const headers = { 'x-forwarded-host': 'chat.example.com', 'x-forwarded-proto': 'https' };
    const untrusted = await fetch(`${server.url}/`, { headers });
    expect((await untrusted.json()).graphql).toBe(`${server.url}/graphql`);
    const behindProxy = await startServer({ TRUST_PROXY: 'true' });
    try {
      const res = await fetch(`${behindProxy.url}/`, { headers });
      expect((await res.json()).graphql).toBe('https://chat.example.com/graphql');
    } finally {
      await behindProxy.stop();
    }
    const post = await fetch(`${server.url}/`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });
});

describe('npm start', () => {
  it('prints where GraphiQL is once it listens', async () => {
    const proc = await spawnServer();
    try {
      const line = await proc.logged(/^GraphiQL: /);
      expect(line.msg).toBe(`GraphiQL: ${proc.url}/graphql`);
      const page = await fetch(`${proc.url}/graphql`, { headers: { accept: 'text/html' } });
      expect(page.status).toBe(200);
    } finally {
      proc.child.kill('SIGTERM');
      await proc.exited;
    }
  });

  it('sends the browser to localhost when the server listens on every interface', () => {
    expect(whereToGo('http://0.0.0.0:4000')).toBe('GraphiQL: http://localhost:4000/graphql');
    expect(whereToGo('http://[::]:4000')).toBe('GraphiQL: http://localhost:4000/graphql');
    expect(whereToGo('http://127.0.0.2:4000')).toBe('GraphiQL: http://127.0.0.2:4000/graphql');
  });
});
