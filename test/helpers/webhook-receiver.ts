import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifySignature } from '@meridian/webhooks';

export interface Received {
  at: number;
  headers: IncomingHttpHeaders;
  body: string;
  json: Record<string, unknown>;
  /** Whether the Standard Webhooks signature verified with the receiver's secret. */
  signed: boolean;
}

/**
 * A webhook receiver on 127.0.0.1, port 0: records every request, checks its signature with
 * `secret` (once set), and answers with the next status of `script` (200 once it is empty).
 */
export class WebhookReceiver {
  readonly received: Received[] = [];
  /** Statuses to answer with, in order; then 200. */
  script: number[] = [];
  secret: string | undefined;
  private server: Server | undefined;
  url = '';

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const h = (k: string) => String(req.headers[k] ?? '');
        this.received.push({
          at: Date.now(),
          headers: req.headers,
          body,
          json: JSON.parse(body) as Record<string, unknown>,
          signed:
            !!this.secret &&
            verifySignature(
              this.secret,
              {
                id: h('webhook-id'),
                timestamp: h('webhook-timestamp'),
                signature: h('webhook-signature'),
              },
              body,
            ),
        });
        res.statusCode = this.script.shift() ?? 200;
        res.end('ok');
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
    return this;
  }

  /** Deliveries whose payload has `action` (ACR format). */
  of(action: string): Received[] {
    return this.received.filter((r) => r.json.action === action);
  }

  async close(): Promise<void> {
    await new Promise<void>((r) => {
      this.server?.close(() => r());
      this.server?.closeAllConnections();
    });
  }
}
