import { resolve } from 'node:path';
import pino from 'pino';
import { attachContentAudit } from '@meridian/auth';
import {
  attachEventMetrics,
  PrimaryUpstream,
  readinessCheck,
  Registry,
  RegistryEvents,
  startNodeServer,
  jsonLineRequestLog,
  UsageReader,
  type RunningNode,
} from '@meridian/registry';
import {
  attachReplication,
  replicaMissPolicy,
  ReplicationStatus,
  RegionNodes,
  TagWatch,
} from '@meridian/replication';
import { openStore } from '@meridian/storage';
import { openAuth, readTls } from './auth-wiring';
import { openQueues, openRegions, regionScopes, storeOptions } from './cluster';
import { latencyBetween, resolveNode, type NodeConfig } from './config';
import { openWebhooks } from './webhooks-wiring';
import { openNodeGc } from './gc-wiring';
import { openNodeRetention } from './retention-wiring';
import { openCache } from './cache-wiring';

/** Wires a registry node (primary or replica) from its configuration and starts it. */
export async function serve(
  config: NodeConfig,
  opts: { ownerPassword?: string } = {},
): Promise<RunningNode> {
  // Buffered, asynchronous log writes: a synchronous line per request costs a third of the
  // manifest GET throughput. Flushed on close.
  const logDestination = pino.destination({
    dest: config.log.file ?? 1,
    sync: false,
    minLength: 4096,
    mkdir: true,
  });
  const log = pino({ level: config.log.level, base: { region: config.region } }, logDestination);
  const node = resolveNode(config);
  const store = await openStore(node.storage, storeOptions(config));
  const queues = openQueues(config);
  const regions = await openRegions(config, { name: config.region, store });
  const replicas = regions.filter((r) => r.role === 'replica').map((r) => r.name);

  let tagWatch: TagWatch | undefined;
  if (node.role === 'replica' && config.redis) {
    tagWatch = new TagWatch(config.redis, config.replication.prefix, log, config.region);
    await tagWatch.start();
  }
  if (node.role === 'replica' && !node.primaryUrl)
    throw new Error('a replica needs the primary endpoint');
  // Who else serves this region (ADR 0024): per-node caches and GC's in-process lock are enough
  // only while alone; with peers, tags are read from the store and GC is fenced through it.
  const peers = queues
    ? new RegionNodes(queues.redis, config.replication.prefix, config.region)
    : undefined;
  const tls = readTls(config);
  const auth = await openAuth(config, node, store, regions, log, opts.ownerPassword);
  const events = await RegistryEvents.open(eventsDir(config, node.storage), {
    region: config.region,
    onError: (err, event, subscriber) =>
      log.warn(
        { err: (err as Error).message, sequence: event.sequence, subscriber },
        'event delivery failed; retrying',
      ),
  });
  const registry = new Registry({
    store,
    events,
    cache: config.cache,
    // The smallest grace any run may use: links are renewed at half of it (ADR 0012).
    gcMinGraceMs: config.gc.minGraceSeconds * 1000,
    softDeleteMs: config.softDelete.enabled
      ? config.softDelete.retentionDays * 86_400_000
      : undefined,
    uploads: {
      idleTimeoutMs: config.uploads.idleTimeoutSeconds * 1000,
      automaticCrossMount: config.uploads.automaticCrossMount,
    },
    pulls: config.usage.enabled
      ? {
          flushIntervalMs: config.usage.flushIntervalSeconds * 1000,
          onError: (err) =>
            log.warn({ err: (err as Error).message }, 'writing pull counts failed; retrying'),
        }
      : undefined,
    blobRedirect: config.s3.redirect
      ? { expiresSeconds: config.s3.redirectExpirySeconds }
      : undefined,
    replica:
      node.role === 'replica'
        ? {
            region: config.region,
            primary: new PrimaryUpstream(node.primaryUrl!.replace(/\/$/, ''), {
              timeoutMs: config.fallback.primaryTimeoutMs,
              delayMs: latencyBetween(
                config,
                config.region,
                config.regions.find((r) => r.role === 'primary')?.name ?? '',
              ),
              authorization: auth?.upstream,
            }),
            freshness: tagWatch,
            stallTimeoutMs: config.fallback.stallTimeoutMs,
            log,
            onMiss: replicaMissPolicy({
              region: config.region,
              queues,
              tagWatch,
              log,
              scope: regions.find((r) => r.name === config.region)?.scope,
            }),
          }
        : undefined,
  });
  if (peers) registry.setExclusive(() => peers.alone);
  const detachMetrics = await attachEventMetrics(events);
  // Content changes are decided on the primary; a replica's events are its own copies of them.
  const detachAudit =
    node.role === 'primary' && auth
      ? await attachContentAudit(events, auth.service.audit)
      : undefined;
  const detachReplication =
    node.role === 'primary' && queues && replicas.length > 0
      ? await attachReplication(registry, {
          queues,
          replicaRegions: replicas,
          log,
          scopes: regionScopes(regions),
        })
      : undefined;
  const status = regions.length > 0 ? new ReplicationStatus(regions, queues) : undefined;
  const usage = new UsageReader(regions.length > 0 ? regions : [{ name: config.region, store }]);
  const gc = await openNodeGc(config, node.role, {
    registry,
    store,
    queues,
    log,
    usage,
  });
  // Registered before it listens; joining a region with nodes waits until they noticed.
  await peers?.start();
  // Untagged retention and the scheduled rules, on the primary (ADR 0021).
  const retention = await openNodeRetention(config, node.role, {
    registry,
    store,
    queues,
    usage,
    log,
  });
  const gauges = status
    ? setInterval(() => void status.updateGauges().catch(() => {}), 5000).unref()
    : undefined;
  const webhooks = await openWebhooks(config, node, { events, store, regions, status, log });
  const cache = openCache(config, node, { registry, store, regions, log });

  const running = await startNodeServer({
    registry,
    log,
    // The node's own logger (options set above): its request lines skip pino's generic path.
    requestLog: jsonLineRequestLog({
      log,
      bindings: { region: config.region },
      write: (line) => logDestination.write(line),
    }),
    region: config.region,
    listen: node.listen,
    purgeIntervalMs: node.role === 'primary' ? config.uploads.purgeIntervalSeconds * 1000 : 0,
    replicationStatus: status,
    webhooks: webhooks.service,
    gc: gc.admin,
    purge: gc.purge,
    retention: retention.admin,
    imports: cache.imports,
    credentialSets: cache.credentialSets,
    cacheRules: cache.cacheRules,
    usage,
    // Each check answers within 2 s, so /readyz says 503 and why while Redis is down (its
    // client queues commands until it reconnects) instead of not answering at all.
    readinessChecks: queues ? [readinessCheck('redis', () => queues.redis.ping())] : [],
    auth: auth?.app,
    tls,
  }).catch(async (err: unknown) => {
    await retention.close();
    await webhooks.close();
    await gc.close();
    await auth?.service.close(); // e.g. the port is taken: no owner was created
    throw err;
  });
  log.info({ url: running.url, storage: store.name, role: node.role }, 'meridian node listening');
  const started: RunningNode = {
    ...running,
    close: async () => {
      if (gauges) clearInterval(gauges);
      await running.close();
      await registry.pulls?.close();
      await retention.close();
      await gc.close();
      await cache.close();
      await detachReplication?.();
      await webhooks.close();
      await detachMetrics();
      await detachAudit?.();
      await events.close();
      await auth?.service.close();
      await tagWatch?.close();
      await peers?.close();
      await queues?.close();
      await Promise.all(regions.filter((r) => r.store !== store).map((r) => r.store.close()));
      await store.close();
      logDestination.flushSync();
    },
  };
  try {
    await auth?.afterListen(); // the owner is created only once the node serves
  } catch (err) {
    await started.close();
    throw err;
  }
  return started;
}

/** `events.journalDir`, else next to a filesystem store, else `./.data/events/<region>`. */
function eventsDir(config: NodeConfig, storage: string): string {
  if (config.events.journalDir) return resolve(config.events.journalDir);
  if (!storage.startsWith('s3://')) return `${resolve(storage)}.events/${config.region}`;
  return resolve('.data/events', config.region);
}
