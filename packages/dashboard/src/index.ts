import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';

export interface DashboardOptions {
  /** Where the dashboard is mounted. Default `/dashboard`. */
  basePath?: string;
}

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

/** Serves a request when it is the dashboard's; answers whether it did. */
export type DashboardHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

const PUBLIC = join(__dirname, '..', 'public');

/** The page, its script and style, and the charting library (uPlot, MIT) from node_modules. */
function loadAssets(): Map<string, Asset> {
  const files: [string, string, string][] = [
    ['', join(PUBLIC, 'index.html'), 'text/html; charset=utf-8'],
    ['api.js', join(PUBLIC, 'api.js'), 'text/javascript; charset=utf-8'],
    ['app.js', join(PUBLIC, 'app.js'), 'text/javascript; charset=utf-8'],
    ['browser.js', join(PUBLIC, 'browser.js'), 'text/javascript; charset=utf-8'],
    ['style.css', join(PUBLIC, 'style.css'), 'text/css; charset=utf-8'],
    [
      'vendor/uPlot.iife.min.js',
      require.resolve('uplot/dist/uPlot.iife.min.js'),
      'text/javascript; charset=utf-8',
    ],
    [
      'vendor/uPlot.min.css',
      require.resolve('uplot/dist/uPlot.min.css'),
      'text/css; charset=utf-8',
    ],
  ];
  const assets = new Map<string, Asset>();
  for (const [name, file, type] of files) {
    const body = readFileSync(file);
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
    assets.set(name, { body, type, etag });
  }
  return assets;
}

const SECURITY_HEADERS = {
  // Everything comes from this origin: no CDN, no inline script, no framing.
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
};

/**
 * The web UI's static files under `basePath` (`/dashboard/`, `/dashboard/app.js`, …), for any
 * `http` listener: `if (handler(req, res)) return;`. The page — the replication dashboard, the
 * registry browser and its sign-in form — reads the registry's APIs (`/meridian/v1`, `/acr/v1`,
 * `/v2`, `/oauth2/token`) relative to itself, so it works on a node, through the gateway (which
 * proxies the page and its reads to the nearest healthy region) and behind a path prefix.
 * Files are read once.
 */
export function dashboardHandler(opts: DashboardOptions = {}): DashboardHandler {
  const base = (opts.basePath ?? '/dashboard').replace(/\/$/, '');
  const assets = loadAssets();
  return (req, res) => {
    const raw = req.url ?? '/';
    const q = raw.indexOf('?');
    const path = q >= 0 ? raw.slice(0, q) : raw;
    if (path !== base && !path.startsWith(`${base}/`)) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' });
      res.end('method not allowed\n');
      return true;
    }
    if (path === base) {
      // Relative URLs in the page resolve against the trailing slash.
      res.writeHead(308, { Location: `${base}/${q >= 0 ? raw.slice(q) : ''}` });
      res.end();
      return true;
    }
    const asset = assets.get(path.slice(base.length + 1));
    if (!asset) {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found\n');
      return true;
    }
    const headers = {
      ...SECURITY_HEADERS,
      'Content-Type': asset.type,
      ETag: asset.etag,
      'Cache-Control': 'no-cache',
    };
    if (req.headers['if-none-match'] === asset.etag) {
      res.writeHead(304, headers);
      res.end();
      return true;
    }
    res.writeHead(200, { ...headers, 'Content-Length': asset.body.length });
    res.end(req.method === 'HEAD' ? undefined : asset.body);
    return true;
  };
}

/** The same, as connect/express middleware: `app.use(dashboardMiddleware())`. */
export function dashboardMiddleware(
  opts: DashboardOptions = {},
): (req: IncomingMessage, res: ServerResponse, next: () => void) => void {
  const handle = dashboardHandler(opts);
  return (req, res, next) => {
    if (!handle(req, res)) next();
  };
}
