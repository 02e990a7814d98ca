import pino from 'pino';
import { jsonLineRequestLog, pinoRequestLog, type RequestLine } from './request-log';

/** A pino logger as `meridian serve` makes it, writing into `out`. */
function serveLogger(level: string, out: string[]) {
  const dest = { write: (s: string) => void out.push(s) };
  return pino({ level, base: { region: 'west "europe"' } }, dest);
}

const lines: RequestLine[] = [
  {
    reqId: '2b1f0c1e-5d7a-4a8e-9a55-6c3cf1d1b7a2',
    method: 'GET',
    path: '/v2/read/app/manifests/latest',
    route: 'manifest',
    repository: 'read/app',
    status: 200,
    bytes: 557,
    ms: 1.23,
  },
  // What a hostile client can put in a path, an aborted response, fields left out.
  {
    reqId: 'x',
    method: 'PATCH',
    path: '/v2/a/blobs/uploads/"\\\u0001é😀\ud800?q=1',
    route: 'upload',
    repository: undefined,
    status: 'aborted',
    bytes: 0,
    ms: 0,
  },
  {
    reqId: 'r',
    method: undefined,
    path: undefined,
    route: 'other',
    repository: undefined,
    status: 404,
    bytes: 0,
    ms: 12345.67,
  },
];

describe('the request log line', () => {
  beforeEach(() => jest.spyOn(Date, 'now').mockReturnValue(1_796_244_053_408));
  afterEach(() => jest.restoreAllMocks());

  it('is byte for byte what pino writes for the same fields', () => {
    const viaPino: string[] = [];
    const fast: string[] = [];
    const log = serveLogger('info', viaPino);
    const slow = pinoRequestLog(log);
    const quick = jsonLineRequestLog({
      log,
      bindings: { region: 'west "europe"' },
      write: (s) => void fast.push(s),
    });
    for (const l of lines) {
      slow(l);
      quick(l);
    }
    expect(fast).toEqual(viaPino);
    expect(JSON.parse(fast[1]!)).toMatchObject({ status: 'aborted', msg: 'request' });
  });

  it('writes nothing when the level is above info', () => {
    const out: string[] = [];
    const quick = jsonLineRequestLog({
      log: serveLogger('warn', out),
      bindings: { region: 'r' },
      write: (s) => void out.push(s),
    });
    quick(lines[0]!);
    expect(out).toEqual([]);
  });
});
