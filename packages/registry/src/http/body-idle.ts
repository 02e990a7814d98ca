import type { IncomingMessage } from 'node:http';
import { httpStalledBodies } from '../metrics';
import { hasBody } from './body';

/** Default for `NodeServerOptions.bodyIdleTimeoutMs`: as long as Node gives a client for its headers. */
export const BODY_IDLE_TIMEOUT_MS = 60_000;

/**
 * Closes the connection of a request whose client stops sending its body. Node bounds the
 * headers (`headersTimeout`) but, with `requestTimeout` off for long uploads, not the body: a
 * client that announced more bytes than it sent and went quiet (a crashed host sends no FIN)
 * held its request forever — its upload session locked against every retry (ADR 0007), up to a
 * manifest's 4 MiB buffered per connection.
 *
 * Only the client's silence counts: the timer re-arms while the socket has read bytes since the
 * last check, or while the request holds bytes the handler has not read yet (the handler, or the
 * storage behind it, is the slow side then). Once the body is complete the timer ends, so a long
 * server-side operation (a GC run, a large commit) is never cut.
 */
export function watchBodyIdle(req: IncomingMessage, idleMs: number): void {
  if (idleMs <= 0 || !hasBody(req)) return;
  const socket = req.socket;
  let seen = socket.bytesRead;
  const timer = setTimeout(() => {
    if (req.complete || req.destroyed || socket.destroyed) return;
    if (socket.bytesRead !== seen || req.readableLength > 0) {
      seen = socket.bytesRead;
      timer.refresh();
      return;
    }
    httpStalledBodies.inc();
    socket.destroy();
  }, idleMs);
  timer.unref();
  req.once('close', () => clearTimeout(timer));
}
