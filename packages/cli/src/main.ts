#!/usr/bin/env node
import { Command } from 'commander';
import { registerAdminCommands } from './admin-cmd';
import { ConfigError, loadConfig, NodeConfigSchema, type NodeConfig } from './config';
import { reconcileCommand, regionsCommand, statusCommand, type ApiConn } from './replication-cmd';
import { serve } from './serve';
import { runWorkers } from './worker';
import { runGateway } from './gateway-cmd';
import { writeSampleImage } from './sample-image';
import { runDev } from './dev';
import { registerGcCommand } from './gc-cmd';
import { registerPurgeCommand } from './purge-cmd';
import { registerRecycleCommands } from './recycle-cmd';
import { registerRetentionCommands } from './retention-cmd';
import { registerRepositoryCommands } from './repository-cmd';
import { registerStorageCommands } from './storage-cmd';
import { registerWebhookCommands } from './webhook-cmd';
import { registerImportCommand } from './import-cmd';
import { registerAcrCommands } from './acr-cmd';
import { registerLoginCommands } from './login-cmd';
import { shapeProgram } from './program-shape';
import { registerCredentialSetCommands } from './credential-set-cmd';
import { registerCacheCommands } from './cache-cmd';

interface CommonOpts {
  config?: string;
  region?: string;
  redis?: string;
  logLevel?: string;
}

function config(o: CommonOpts, extra: Record<string, unknown> = {}): NodeConfig {
  return loadConfig(NodeConfigSchema, {
    file: o.config,
    checkRegion:
      o.region !== undefined ||
      extra.listen !== undefined ||
      extra.storage !== undefined ||
      'role' in extra,
    overrides: { region: o.region, redis: o.redis, 'log.level': o.logLevel, ...extra },
  });
}

function onSignals(close: () => Promise<void>): void {
  const stop = () => {
    void close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

const collect = (v: string, prev: string[]) => [...prev, ...v.split(',').filter(Boolean)];

const program = new Command();
program.name('meridian').description('Meridian: a geo-replicated OCI container registry');
shapeProgram(program);

program
  .command('serve')
  .description('serve a registry node (the OCI Distribution API), primary or replica')
  .option('--config <file>', 'YAML or JSON configuration file (node or whole cluster)')
  .option(
    '--listen <host:port>',
    'address to listen on (default: the region endpoint, else 127.0.0.1:5000)',
  )
  .option('--storage <dir|s3-url>', 'a directory, or s3://BUCKET[/PREFIX]?endpoint=URL&region=R')
  .option('--region <name>', "this node's region")
  .option('--role <role>', 'primary or replica')
  .option('--primary <url>', "the primary's endpoint (replicas)")
  .option('--redis <url>', 'Redis URL (clusters)')
  .option('--log-level <level>', 'trace|debug|info|warn|error|silent')
  .option('--tls-cert <file>', 'PEM certificate: serve HTTPS (with --tls-key)')
  .option('--tls-key <file>', 'PEM private key')
  .action(
    async (
      o: CommonOpts & {
        listen?: string;
        storage?: string;
        role?: string;
        primary?: string;
        tlsCert?: string;
        tlsKey?: string;
      },
    ) => {
      const node = await serve(
        config(o, {
          listen: o.listen,
          storage: o.storage,
          role: o.role,
          primary: o.primary,
          'tls.cert': o.tlsCert,
          'tls.key': o.tlsKey,
        }),
      );
      onSignals(() => node.close());
    },
  );

program
  .command('worker')
  .description(
    'run replication workers (and the reconciler) for all replica regions or the named ones',
  )
  .option('--config <file>', 'cluster configuration file')
  .option(
    '--region <name>',
    'a replica region to serve (repeatable, or comma-separated)',
    collect,
    [],
  )
  .option('--concurrency <n>', 'jobs at once per region', (v) => Number(v))
  .option('--metrics-listen <host:port>', 'serve /metrics and /healthz for Prometheus here')
  .option('--redis <url>', 'Redis URL')
  .option('--log-level <level>', 'trace|debug|info|warn|error|silent')
  .action(
    async (
      o: Omit<CommonOpts, 'region'> & {
        region: string[];
        concurrency?: number;
        metricsListen?: string;
      },
    ) => {
      const c = config({ ...o, region: undefined }, { 'worker.metricsListen': o.metricsListen });
      const w = await runWorkers(c, o.region, o.concurrency);
      onSignals(() => w.close());
    },
  );

program
  .command('gateway')
  .description(
    "serve the registry's global endpoint: reads to the nearest healthy region, writes to the primary",
  )
  .option('--config <file>', 'cluster configuration file (regions, gateway section)')
  .option('--listen <host:port>', 'address to listen on (repeatable)', collect, [])
  .option('--tls-cert <file>', 'PEM certificate: serve HTTPS (with --tls-key)')
  .option('--tls-key <file>', 'PEM private key')
  .option('--log-level <level>', 'trace|debug|info|warn|error|silent')
  .action(
    async (
      o: Omit<CommonOpts, 'region'> & { listen: string[]; tlsCert?: string; tlsKey?: string },
    ) => {
      const c = config({ ...o, region: undefined }, { 'tls.cert': o.tlsCert, 'tls.key': o.tlsKey });
      const g = await runGateway(
        o.listen.length ? { ...c, gateway: { ...c.gateway, listen: o.listen } } : c,
      );
      onSignals(() => g.close());
    },
  );

program
  .command('dev')
  .description(
    'start a whole multi-region cluster as local processes: Redis, a node per region, workers, the gateway',
  )
  .option('--port <n>', 'gateway port; regions use the following ports', (v) => Number(v), 5000)
  .option(
    '--regions <list>',
    'comma-separated region names, the first is the primary',
    'eastus,westeurope,southeastasia',
  )
  .option('--data <dir>', 'where the regions keep their data (kept between runs)', './.data/dev')
  .option(
    '--storage <s3-url>',
    'put regions on S3 instead: s3://BUCKET?endpoint=URL&region=R (a prefix per region)',
  )
  .option('--redis <url>', 'use this Redis instead of spawning redis-server')
  .option(
    '--latency <pairs>',
    'simulated one-way latency, e.g. eastus-westeurope=40,westeurope-southeastasia=75',
  )
  .option('--log-level <level>', 'log level of the processes', 'warn')
  .option(
    '--nodes-per-region <n>',
    'serve nodes per region (on consecutive ports; the gateway spreads their requests)',
    (v) => Number(v),
    1,
  )
  .action(
    async (o: {
      nodesPerRegion: number;
      port: number;
      regions: string;
      data: string;
      storage?: string;
      redis?: string;
      latency?: string;
      logLevel: string;
    }) => {
      await runDev(o);
    },
  );

program
  .command('sample-image')
  .description(
    'write a small OCI image layout to DIR, to push with skopeo copy oci:DIR:TAG (no network needed)',
  )
  .argument('<dir>', 'directory to write (created)')
  .option('--tag <tag>', 'tag inside the layout', 'v1')
  .action((dir: string, o: { tag: string }) => {
    const digest = writeSampleImage(dir, o.tag);
    process.stdout.write(`wrote oci:${dir}:${o.tag} (${digest})\n`);
  });

const replication = program.command('replication').description('replication operations');
const apiConn = (c: Command) =>
  c
    .option(
      '--url <url>',
      'a node or the gateway (env MERIDIAN_URL; default http://127.0.0.1:5000)',
    )
    .option('--user <name>', 'a signed-in identity (env MERIDIAN_USERNAME; default owner)')
    .option('--password <password>', 'its password (env MERIDIAN_PASSWORD)');
apiConn(
  replication
    .command('reconcile')
    .description(
      'ask a node (Owner) to queue a reconcile run of the replica regions (all or the named ones): the workers compare each with the primary and queue every difference',
    )
    .option('--region <name>', 'only this region (repeatable)', collect, [])
    .option('--no-wait', 'queue the runs and return, without waiting for what they find')
    .option('--timeout <seconds>', 'how long to wait for the runs (default 120)'),
).action(async (o: ApiConn & { region: string[]; wait: boolean; timeout?: string }) => {
  const timeoutSeconds = o.timeout === undefined ? undefined : Number(o.timeout);
  process.stdout.write(
    `${await reconcileCommand(o, o.region, { wait: o.wait, timeoutSeconds })}\n`,
  );
});
apiConn(
  replication
    .command('status')
    .description("one object's replication state in every region (from a node's API)")
    .option('--repository <name>', 'repository (required)')
    .option('--reference <tag|digest>', 'tag or digest (required)'),
).action(async (o: ApiConn & { repository?: string; reference?: string }) => {
  process.stdout.write(`${await statusCommand(o, o.repository, o.reference)}\n`);
});
apiConn(
  replication
    .command('regions')
    .description("every region's health, queue and lag (from a node's API)"),
).action(async (o: ApiConn) => {
  process.stdout.write(`${await regionsCommand(o)}\n`);
});

registerAdminCommands(program);
registerStorageCommands(program);
registerWebhookCommands(program);
registerGcCommand(program, apiConn);
registerPurgeCommand(program, apiConn);
registerRecycleCommands(program, apiConn);
registerRetentionCommands(program, apiConn);
registerRepositoryCommands(program, apiConn);
registerAcrCommands(program);
registerLoginCommands(program);
registerImportCommand(program);
registerCredentialSetCommands(program);
registerCacheCommands(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof ConfigError) {
    process.stderr.write(`meridian: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`meridian: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
