// A bare node:http server that answers every request with one recorded response (status 200,
// the same headers and body): what one Node process does for a manifest GET when nothing else
// happens per request. Row 5f reads Meridian's manifest GET beside it, measured in the same run.
//
//   node bench/lib/bare-server.mjs PORT RESPONSE.json   (RESPONSE: { headers, body: base64 })
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

const [, , port, file] = process.argv;
const { headers, body } = JSON.parse(readFileSync(file, 'utf8'));
const bytes = Buffer.from(body, 'base64');
createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, (req, res) => {
  res.writeHead(200, headers);
  res.end(req.method === 'HEAD' ? undefined : bytes);
}).listen(Number(port), '127.0.0.1');
