// A bare node:http forwarding proxy: every request goes to the upstream as it came, the answer
// comes back as it went — no hash, no spool, no store, no cache. What one Node process in the
// middle of a pull costs on this machine, with nothing else to do: the ceiling for a cold pull
// through a cache rule (bench:cache reads its own cold pull beside it, in the same runs).
//
//   node bench/lib/bare-proxy.mjs PORT UPSTREAM_URL
import { createServer, request } from 'node:http';

const [, , port, upstream] = process.argv;
const t = new URL(upstream);
createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, (req, res) => {
  const up = request(
    { host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers },
    (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    },
  );
  up.on('error', () => res.destroy());
  req.pipe(up);
}).listen(Number(port), '127.0.0.1');
