import { OciError } from '@meridian/oci';
import { toOciError } from '../domain/storage-errors';

/** What body-parser (and http-errors) put on the errors they raise. */
interface ParserError {
  status?: unknown;
  statusCode?: unknown;
  type?: unknown;
  expose?: unknown;
}

/** Fixed messages per parser failure: a parser's own message may quote the body it rejected. */
const PARSER_MESSAGES: Record<string, string> = {
  'entity.too.large': 'request body is too large',
  'entity.parse.failed': 'malformed request body',
  'entity.verify.failed': 'malformed request body',
  'encoding.unsupported': 'unsupported content encoding',
  'charset.unsupported': 'unsupported charset',
  'parameters.too.many': 'too many form parameters',
  'request.aborted': 'request aborted by the client',
  'request.size.invalid': 'request body does not match its Content-Length',
  'stream.encoding.set': 'malformed request body',
  'stream.not.readable': 'malformed request body',
};

/**
 * Any error a handler or a body parser raised, as the OCI error the client gets. Client errors
 * keep their 4xx status (413 for a large body, 415 for an unsupported charset or encoding, 400
 * for a malformed one) with a fixed message — never the parser's, which can quote the body, and
 * the raw error (whose `body` holds what the client sent) is dropped so it can never be logged.
 * Everything else goes through the storage translation and becomes `500 UNKNOWN` at the writer.
 */
export function clientError(err: unknown): unknown {
  if (err instanceof OciError) return err;
  if (err instanceof URIError)
    return new OciError('NAME_INVALID', 'malformed percent-encoding in the request');
  if (typeof err === 'object' && err !== null) {
    const e = err as ParserError;
    const status = typeof e.status === 'number' ? e.status : e.statusCode;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      const type = typeof e.type === 'string' ? e.type : '';
      const message = PARSER_MESSAGES[type] ?? 'malformed request';
      if (status === 413) return new OciError('SIZE_INVALID', message, undefined, 413);
      return new OciError('UNSUPPORTED', message, undefined, status);
    }
  }
  return toOciError(err);
}
