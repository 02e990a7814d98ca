// A login flood, run as its own process by the login-abuse scenario (so its JavaScript does not
// share an event loop with the client being measured): `concurrency` requests always in flight,
// each `GET /v2/` with Basic credentials for an unknown username and a wrong password, from a
// new address every time (X-Forwarded-For, believed from loopback as from the gateway) — a
// botnet's worst case, which no per-address or per-identity limit stops. Runs until SIGTERM,
// then prints {"total":…, "byStatus":{…}} on stdout.
//
//   node bench/lib/login-flood.mjs URL CONCURRENCY
import http from 'node:http';

const [url, concurrency = '100'] = process.argv.slice(2);
const agent = new http.Agent({ keepAlive: true, maxSockets: Number(concurrency) });
const byStatus = {};
let total = 0;
let stopping = false;
let n = 0;

function once() {
  return new Promise((resolve) => {
    const i = n++;
    const auth = Buffer.from(`nobody-${i}:guess-${i}`).toString('base64');
    const addr = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    const req = http.get(
      `${url}/v2/`,
      { agent, headers: { authorization: `Basic ${auth}`, 'x-forwarded-for': addr } },
      (res) => {
        res.resume();
        res.once('end', () => {
          byStatus[res.statusCode] = (byStatus[res.statusCode] ?? 0) + 1;
          total++;
          resolve();
        });
      },
    );
    req.once('error', () => {
      byStatus.error = (byStatus.error ?? 0) + 1;
      resolve();
    });
  });
}

async function worker() {
  while (!stopping) await once();
}

const workers = Array.from({ length: Number(concurrency) }, worker);
process.once('SIGTERM', async () => {
  stopping = true;
  await Promise.all(workers);
  process.stdout.write(`${JSON.stringify({ total, byStatus })}\n`);
  process.exit(0);
});
process.stdout.write('ready\n');
