import { createServer, get, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dashboardHandler } from './index';

describe('dashboardHandler', () => {
  let server: Server;
  let base: string;
  let fallthrough = 0;
  beforeAll(async () => {
    const handle = dashboardHandler();
    server = createServer((req, res) => {
      if (handle(req, res)) return;
      fallthrough++;
      res.writeHead(418).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('redirects the bare path to the trailing slash, keeping the query', async () => {
    const r = await fetch(`${base}/dashboard?x=1`, { redirect: 'manual' });
    expect(r.status).toBe(308);
    expect(r.headers.get('location')).toBe('/dashboard/?x=1');
  });

  it('serves the page, its scripts, style and the vendored chart library with ETags', async () => {
    for (const [path, type] of [
      ['/dashboard/', 'text/html'],
      ['/dashboard/api.js', 'text/javascript'],
      ['/dashboard/app.js', 'text/javascript'],
      ['/dashboard/browser.js', 'text/javascript'],
      ['/dashboard/style.css', 'text/css'],
      ['/dashboard/vendor/uPlot.iife.min.js', 'text/javascript'],
      ['/dashboard/vendor/uPlot.min.css', 'text/css'],
    ] as const) {
      const r = await fetch(base + path);
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toContain(type);
      const etag = r.headers.get('etag')!;
      expect(etag).toMatch(/^"/);
      const again = await fetch(base + path, { headers: { 'If-None-Match': etag } });
      expect(again.status).toBe(304);
    }
  });

  it('answers HEAD without a body, refuses writes, 404s unknown files and traversal', async () => {
    const head = await fetch(`${base}/dashboard/app.js`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(Number(head.headers.get('content-length'))).toBeGreaterThan(1000);
    expect((await fetch(`${base}/dashboard/`, { method: 'POST' })).status).toBe(405);
    expect((await fetch(`${base}/dashboard/nope.js`)).status).toBe(404);
    // The raw path (fetch would resolve the dots itself): files come from a fixed table.
    const status = await new Promise<number | undefined>((resolve, reject) =>
      get(`${base}/dashboard/../package.json`, { path: '/dashboard/../package.json' }, (res) => {
        res.resume();
        resolve(res.statusCode);
      }).on('error', reject),
    );
    expect(status).toBe(404);
  });

  it('leaves every other path to the caller', async () => {
    const before = fallthrough;
    expect((await fetch(`${base}/dashboards`)).status).toBe(418);
    expect((await fetch(`${base}/v2/`)).status).toBe(418);
    expect(fallthrough).toBe(before + 2);
  });
});
