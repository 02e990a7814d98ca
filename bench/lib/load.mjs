// Load generators: wrk (GET, with a generated Lua script) and ab (HEAD).
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { tempDir } from './procs.mjs';

const run = promisify(execFile);
let scripts = 0;

function luaString(s) {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/**
 * Runs `wrk -t<threads> -c<connections> -d<seconds>s` against `url`; returns req/s, latency
 * percentiles and error counts (non-2xx/3xx statuses count as errors: a benchmark of 404s is
 * not a benchmark).
 */
export async function wrk(
  url,
  { method = 'GET', headers = {}, threads = 2, connections = 32, seconds = 10 } = {},
) {
  const script = join(tempDir('wrk'), `s${scripts++}.lua`);
  const lines = [`wrk.method = ${luaString(method)}`];
  for (const [k, v] of Object.entries(headers))
    lines.push(`wrk.headers[${luaString(k)}] = ${luaString(v)}`);
  lines.push(
    'done = function(summary, latency, requests)',
    '  local e = summary.errors',
    '  io.write(string.format(\'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,' +
      '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d}\\n\',',
    '    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,',
    '    e.timeout, latency:percentile(50), latency:percentile(99)))',
    'end',
  );
  writeFileSync(script, lines.join('\n') + '\n');
  const args = [
    `-t${threads}`,
    `-c${connections}`,
    `-d${seconds}s`,
    '--timeout',
    '5s',
    '-s',
    script,
    url,
  ];
  const { stdout } = await run('wrk', args, { maxBuffer: 1 << 20 });
  const line = stdout.split('\n').find((l) => l.startsWith('WRKJSON '));
  if (!line) throw new Error(`wrk printed no summary:\n${stdout}`);
  const s = JSON.parse(line.slice('WRKJSON '.length));
  const errors = s.connect + s.read + s.write + s.status + s.timeout;
  return {
    rps: s.requests / (s.duration_us / 1e6),
    requests: s.requests,
    errors,
    statusErrors: s.status,
    p50ms: s.p50_us / 1000,
    p99ms: s.p99_us / 1000,
    cmd: `wrk ${args.slice(0, 3).join(' ')} -s <${method} script> ${url}`,
  };
}

/** Is a command on PATH? */
export async function have(cmd) {
  try {
    await run('sh', ['-c', `command -v ${cmd}`]);
    return true;
  } catch {
    return false;
  }
}

/**
 * ApacheBench for HEAD: wrk 4.1 waits for the body a HEAD response's Content-Length announces
 * and so never completes one. `ab -i` does HEAD properly; it is single-threaded, so its figures
 * sit beside wrk's, not against them (both registries are measured with the same tool).
 */
export async function ab(
  url,
  { method = 'HEAD', headers = {}, connections = 32, seconds = 10 } = {},
) {
  const args = ['-k', '-q', `-c${connections}`, `-t${seconds}`, '-n', '100000000', '-s', '5'];
  if (method === 'HEAD') args.push('-i');
  else if (method !== 'GET') throw new Error(`ab: unsupported method ${method}`);
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
  args.push(url);
  const { stdout } = await run('ab', args, { maxBuffer: 1 << 20 });
  const num = (re) => {
    const m = re.exec(stdout);
    return m ? Number(m[1]) : 0;
  };
  const rps = num(/Requests per second:\s+([\d.]+)/);
  if (!rps) throw new Error(`ab printed no rate:\n${stdout}`);
  return {
    rps,
    requests: num(/Complete requests:\s+(\d+)/),
    errors: num(/Failed requests:\s+(\d+)/) + num(/Non-2xx responses:\s+(\d+)/),
    statusErrors: num(/Non-2xx responses:\s+(\d+)/),
    p50ms: num(/^\s+50%\s+(\d+)/m),
    p99ms: num(/^\s+99%\s+(\d+)/m),
    cmd: `ab -k -c${connections} -t${seconds} ${method === 'HEAD' ? '-i ' : ''}${url}`,
  };
}
