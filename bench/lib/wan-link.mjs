// A TCP forwarder on loopback that stands for a WAN link to a remote registry: every byte in
// either direction arrives `delayMs` after it was sent (a one-way delay: a round trip costs
// twice that) and the bytes from the remote side share one `mbps` budget (MB/s, 10^6 bytes),
// as the clients of one site share its link to Docker Hub. Both timed rows of bench/cache.mjs
// reach the upstream through the same link, so it costs them the same.
import { createConnection, createServer } from 'node:net';

/**
 * Starts the link in front of `target` (`host:port`); resolves to `{ host, close }`, where
 * `host` (`127.0.0.1:port`) is what clients dial instead of `target`.
 */
export async function wanLink(target, { delayMs, mbps }) {
  const [host, port] = target.split(':');
  const bytesPerMs = (mbps * 1e6) / 1000;
  // The downstream budget: the time the link is busy until, ms (performance.now()).
  let busyUntil = 0;
  const sockets = new Set();

  /**
   * One direction of one connection: chunks leave in the order they came, each once its time
   * on the link has passed (one timer for the queue's head: timers of different delays do not
   * keep their order).
   */
  const lane = (from, to, shaped) => {
    const queue = [];
    let timer;
    let ended = false;
    const flush = () => {
      timer = undefined;
      const now = performance.now();
      while (queue.length > 0 && queue[0].at <= now) {
        const { chunk } = queue.shift();
        if (to.destroyed) return;
        if (chunk === null) to.end();
        else to.write(chunk);
      }
      if (queue.length > 0) timer = setTimeout(flush, queue[0].at - now);
      // Backpressure: read on once less than 50 ms of sending is queued. The budget is shared:
      // other connections may have queued more meanwhile, so a paused lane with nothing left to
      // send looks again when the link will have room (else it would wait for a timer never set).
      if (shaped && from.isPaused() && !ended) {
        if (busyUntil - now < 50) from.resume();
        else timer ??= setTimeout(flush, busyUntil - now - 49);
      }
    };
    const enqueue = (chunk) => {
      const now = performance.now();
      let at = now + delayMs;
      if (shaped && chunk !== null) {
        busyUntil = Math.max(busyUntil, now) + chunk.length / bytesPerMs;
        at = busyUntil + delayMs;
      } else if (shaped) at = Math.max(busyUntil, now) + delayMs;
      at = Math.max(at, queue.at(-1)?.at ?? 0);
      queue.push({ at, chunk });
      if (timer === undefined) timer = setTimeout(flush, at - now);
      if (shaped && busyUntil - now > 50) from.pause();
    };
    from.on('data', enqueue);
    // An end crosses the link after the bytes before it.
    from.on('end', () => {
      ended = true;
      enqueue(null);
    });
  };

  const server = createServer((client) => {
    const remote = createConnection({ host, port: Number(port) });
    for (const s of [client, remote]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        remote.destroy();
      });
    }
    lane(client, remote, false);
    lane(remote, client, true);
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  return {
    host: `127.0.0.1:${server.address().port}`,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}
