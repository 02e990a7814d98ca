#!/usr/bin/env node
import { Command } from 'commander';
import { ConfigError, loadConfig, NodeConfigSchema } from './config';
import { serve } from './serve';

const program = new Command();
program.name('meridian').description('Meridian: a geo-replicated OCI container registry');

program
  .command('serve')
  .description('serve a registry node (the OCI Distribution API)')
  .option('--config <file>', 'YAML or JSON configuration file')
  .option('--listen <host:port>', 'address to listen on (default 127.0.0.1:5000)')
  .option('--storage <dir|s3-url>', 'a directory, or s3://BUCKET[/PREFIX]?endpoint=URL&region=R')
  .option('--region <name>', 'region name for logs and metrics')
  .option('--log-level <level>', 'trace|debug|info|warn|error|silent')
  .action(async (o: { config?: string; listen?: string; storage?: string; region?: string; logLevel?: string }) => {
    const config = loadConfig(NodeConfigSchema, {
      file: o.config,
      overrides: { listen: o.listen, storage: o.storage, region: o.region, 'log.level': o.logLevel },
    });
    const node = await serve(config);
    const stop = () => {
      void node.close().then(() => process.exit(0));
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof ConfigError) {
    process.stderr.write(`meridian: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`meridian: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
