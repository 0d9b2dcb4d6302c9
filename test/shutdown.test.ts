import { describe, expect, it } from 'vitest';
import { connectWs, gql, signUp } from './helpers/clients.ts';
import { Me } from './helpers/operations.ts';
import { spawnServer } from './helpers/process.ts';

describe('SIGTERM', () => {
  it('closes sockets with 1001, stops accepting, and exits 0', async () => {
    const server = await spawnServer();
    const user = await signUp(server);
    const ws = connectWs(server, user.accessToken);
    await ws.connected;
    expect((await gql(server, Me, undefined, user.accessToken)).data!.me!.id).toBe(user.id);

    server.child.kill('SIGTERM');
    expect(await ws.closed).toEqual({ code: 1001, reason: 'Server shutting down' });
    expect(await server.exited).toBe(0);
    await expect(fetch(`${server.url}/health`)).rejects.toThrow();
  });
});
