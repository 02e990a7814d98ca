import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { readTls } from './auth-wiring';
import pino from 'pino';
import { answerClientError, createGateway, HealthChecker, Topology } from '@meridian/gateway';
import { parseListen } from '@meridian/registry';
import { latencyBetween, type NodeConfig } from './config';

export interface RunningGateway {
  urls: string[];
  health: HealthChecker;
  close(): Promise<void>;
}

/** Starts the global endpoint described by the cluster configuration's `gateway` section. */
export async function runGateway(config: NodeConfig): Promise<RunningGateway> {
  const log = pino(
    { level: config.log.level, base: { role: 'gateway' } },
    pino.destination({ dest: config.log.file ?? 1, sync: true, mkdir: true }),
  );
  if (config.regions.length === 0)
    throw new Error('config key "regions": the gateway needs the cluster\'s regions');
  const topology = new Topology({
    regions: config.regions.map((r) => ({
      name: r.name,
      role: r.role,
      endpoint: r.endpoint.replace(/\/$/, ''),
      nodes: r.nodes?.map((n) => n.replace(/\/$/, '')),
    })),
    clients: config.gateway.clients,
    defaultRegion: config.gateway.defaultRegion,
    preference: config.gateway.preference,
    matchOn: config.gateway.matchOn,
  });
  const health = new HealthChecker(topology.regions, {
    intervalMs: config.gateway.healthIntervalMs,
  });
  health.start();
  const listener = createGateway({
    topology,
    health,
    log,
    upstreamTimeoutMs: config.gateway.upstreamTimeoutMs,
    stallTimeoutMs: config.gateway.stallTimeoutMs,
    latencyMs: Object.keys(config.simulatedLatencyMs).length
      ? (a, b) => latencyBetween(config, a, b)
      : undefined,
  });
  const tls = readTls(config);
  const servers: Server[] = [];
  const urls: string[] = [];
  for (const addr of config.gateway.listen) {
    const { host, port } = parseListen(addr);
    const serverOpts = { keepAliveTimeout: 65_000, requestTimeout: 0 };
    const server: Server = tls
      ? createHttpsServer({ ...serverOpts, cert: tls.cert, key: tls.key }, listener)
      : createServer(serverOpts, listener);
    server.on('clientError', answerClientError);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    servers.push(server);
    const a = server.address();
    urls.push(`${tls ? 'https' : 'http'}://${host}:${typeof a === 'object' && a ? a.port : port}`);
  }
  log.info({ urls }, 'meridian gateway listening');
  return {
    urls,
    health,
    close: async () => {
      health.stop();
      await Promise.all(
        servers.map(
          (s) =>
            new Promise<void>((resolve) => {
              s.close(() => resolve());
              s.closeAllConnections();
            }),
        ),
      );
    },
  };
}
