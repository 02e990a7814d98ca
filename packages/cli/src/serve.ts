import pino from 'pino';
import { Registry, startNodeServer, type RunningNode } from '@meridian/registry';
import { openStore } from '@meridian/storage';
import type { NodeConfig } from './config';

/** Wires a registry node from its configuration and starts it. */
export async function serve(config: NodeConfig): Promise<RunningNode> {
  const log = pino({ level: config.log.level, base: { region: config.region } });
  const store = await openStore(config.storage, {
    partSize: config.s3.partSize,
    requestChecksumCalculation: config.s3.requestChecksumCalculation,
    responseChecksumValidation: config.s3.responseChecksumValidation,
  });
  const registry = new Registry({
    store,
    cache: config.cache,
    uploads: { idleTimeoutMs: config.uploads.idleTimeoutSeconds * 1000 },
  });
  registry.events.subscribe((e) => log.debug({ event: e }, 'registry event'));
  const node = await startNodeServer({
    registry,
    log,
    region: config.region,
    listen: config.listen,
    purgeIntervalMs: config.uploads.purgeIntervalSeconds * 1000,
  });
  log.info({ url: node.url, storage: store.name }, 'meridian node listening');
  return {
    ...node,
    close: async () => {
      await node.close();
      await store.close();
    },
  };
}
