import type { Logger } from 'pino';

/** One request's line in the log, written when its response closes. */
export interface RequestLine {
  reqId: string;
  method: string | undefined;
  path: string | undefined;
  route: string;
  repository: string | undefined;
  status: number | 'aborted';
  bytes: number;
  ms: number;
}

export type RequestLog = (line: RequestLine) => void;

/** The request line through pino: `log.info(line, 'request')`. */
export function pinoRequestLog(log: Logger): RequestLog {
  return (line) => log.info(line, 'request');
}

/**
 * The same line, byte for byte, as `log.info(line, 'request')` writes it for a pino logger with
 * pino's default formatting (level as a number, epoch `time`, `msg`, no mixin, serializers or
 * formatters) whose bindings are `bindings` — built as one string with the line's fixed fields
 * instead of through pino's generic serializer, which cost a hot manifest GET a sixth of its
 * CPU (ADR 0027). `write` is that logger's destination. Only for a logger whose options the
 * caller set itself (the node's own, in `meridian serve`); anything else uses `pinoRequestLog`.
 */
export function jsonLineRequestLog(opts: {
  log: Logger;
  bindings: Record<string, string>;
  write: (line: string) => void;
}): RequestLog {
  const { log, write } = opts;
  const bindings = Object.entries(opts.bindings)
    .map(([k, v]) => `,${JSON.stringify(k)}:${JSON.stringify(v)}`)
    .join('');
  const level = log.levels.values.info;
  return (l) => {
    if (!log.isLevelEnabled('info')) return;
    let s = `{"level":${level},"time":${Date.now()}${bindings},"reqId":${JSON.stringify(l.reqId)}`;
    if (l.method !== undefined) s += `,"method":${JSON.stringify(l.method)}`;
    if (l.path !== undefined) s += `,"path":${JSON.stringify(l.path)}`;
    s += `,"route":${JSON.stringify(l.route)}`;
    if (l.repository !== undefined) s += `,"repository":${JSON.stringify(l.repository)}`;
    s += `,"status":${JSON.stringify(l.status)},"bytes":${l.bytes},"ms":${l.ms},"msg":"request"}\n`;
    write(s);
  };
}
