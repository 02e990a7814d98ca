/**
 * Import rules for the workspace, checked by `pnpm lint` (`depcruise packages`).
 *
 * Package layering (docs: /work/shared/ARCHITECTURE.md, "Packages"):
 *
 *   cli → registry | gateway | replication | auth | dashboard → storage → oci
 *
 * plus the arrows inside the middle floor that the design calls for: registry → auth (the
 * auth gate), registry → dashboard and gateway → dashboard (both serve /dashboard), and
 * replication → registry's domain (replication attaches to the registry's events as a plugin;
 * the registry never calls replication). Workspace packages are resolved through
 * tsconfig.test.json's `paths` (`@meridian/*` → `packages/*\/src`), the same mapping jest's
 * moduleNameMapper uses, so every rule below sees source files, never `dist/`.
 */

/** `packages/<name>/src/…` for each of the given package names. */
const pkg = (...names) => `^packages/(${names.join('|')})/src/`;

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    // --- cycles -------------------------------------------------------------------------------
    {
      name: 'no-circular',
      severity: 'error',
      comment:
        'Files import each other in a circle. Break it by moving the shared part into its own ' +
        'module, or by depending on an interface/type instead of the implementation.',
      from: { path: '^packages/[^/]+/src/' },
      to: { circular: true },
    },

    // --- package layering -----------------------------------------------------------------------
    {
      name: 'oci-is-the-ground-floor',
      severity: 'error',
      comment: '@meridian/oci is grammar and data only: it imports no other @meridian package.',
      from: { path: pkg('oci') },
      to: { path: '^packages/(?!oci/)[^/]+/' },
    },
    {
      name: 'oci-does-no-io',
      severity: 'error',
      comment: '@meridian/oci does no I/O: no filesystem, network, process or HTTP modules.',
      from: { path: pkg('oci') },
      to: {
        dependencyTypes: ['core'],
        path: '^(node:)?(fs|fs/promises|net|http|https|http2|tls|dgram|dns|dns/promises|child_process|cluster|worker_threads)$',
      },
    },
    {
      name: 'storage-imports-only-oci',
      severity: 'error',
      comment:
        '@meridian/storage sits on @meridian/oci alone; it knows nothing about HTTP or queues.',
      from: { path: pkg('storage') },
      to: { path: '^packages/(?!(storage|oci)/)[^/]+/' },
    },
    {
      name: 'storage-knows-no-http-framework',
      severity: 'error',
      comment: '@meridian/storage must not know about HTTP (express) or queues (bullmq, ioredis).',
      from: { path: pkg('storage') },
      to: { path: '(^|node_modules/)(express|bullmq|ioredis)(/|$)' },
    },
    {
      name: 'auth-below-registry',
      severity: 'error',
      comment:
        '@meridian/auth is used by the registry (and the CLI); it must not import the registry, ' +
        'gateway, replication, dashboard or CLI.',
      from: { path: pkg('auth') },
      to: { path: pkg('registry', 'gateway', 'replication', 'dashboard', 'cli') },
    },
    {
      name: 'gateway-stores-nothing',
      severity: 'error',
      comment:
        'The gateway routes and fails over; it stores no content, so it must not import the ' +
        'registry, storage or replication (nor the CLI that wires them).',
      from: { path: pkg('gateway') },
      to: { path: pkg('registry', 'storage', 'replication', 'cli') },
    },
    {
      name: 'registry-does-not-call-replication',
      severity: 'error',
      comment:
        "Side effects attach by decoration: replication subscribes to the registry's domain " +
        'events (attachReplication(registry, …)); the registry never imports replication, the ' +
        'gateway or the CLI.',
      from: { path: pkg('registry') },
      to: { path: pkg('replication', 'webhooks', 'gateway', 'cli') },
    },
    {
      name: 'webhooks-is-a-plugin',
      severity: 'error',
      comment:
        "@meridian/webhooks attaches to the registry's domain events structurally " +
        '(attachWebhooks(registry, …)) and keeps its definitions through storage: it imports ' +
        'no registry, replication, gateway, dashboard, auth or CLI module.',
      from: { path: pkg('webhooks') },
      to: { path: pkg('registry', 'replication', 'gateway', 'dashboard', 'auth', 'cli') },
    },
    {
      name: 'replication-serves-no-http',
      severity: 'error',
      comment:
        "Replication may use the registry's domain (events, stores) but not its HTTP layer " +
        '(app, server, routes, http/), nor the gateway, dashboard or CLI.',
      from: { path: pkg('replication') },
      to: {
        path: [
          '^packages/registry/src/(http|routes)/',
          '^packages/registry/src/(app|server|readiness)\\.ts$',
          pkg('gateway', 'dashboard', 'cli'),
        ],
      },
    },
    {
      name: 'observability-is-a-leaf',
      comment:
        '@meridian/observability (the one /metrics + /healthz server) is used by nodes, workers ' +
        'and the gateway alike, so it imports no package above oci: through it the gateway would ' +
        'reach the registry, storage or replication.',
      severity: 'error',
      from: { path: pkg('observability') },
      to: { path: '^packages/(?!(observability|oci)/)[^/]+/' },
    },
    {
      name: 'redis-is-a-leaf',
      comment:
        '@meridian/redis (the one factory for ioredis clients: URL or Sentinel, TLS, password; ' +
        'the lazy loaders of ioredis and BullMQ) is used by auth, replication, webhooks, ' +
        'lifecycle and the CLI, so it imports no Meridian package.',
      severity: 'error',
      from: { path: pkg('redis') },
      to: { path: '^packages/(?!redis/)[^/]+/' },
    },
    {
      name: 'dashboard-stands-alone',
      severity: 'error',
      comment: '@meridian/dashboard is served by others and imports nothing from them.',
      from: { path: pkg('dashboard') },
      to: { path: '^packages/(?!dashboard/)[^/]+/' },
    },
    {
      name: 'nothing-imports-the-cli',
      severity: 'error',
      comment: '@meridian/cli is the top floor: it wires the others and nobody imports it.',
      from: { path: '^packages/(?!cli/)[^/]+/' },
      // cli has no index module, so `@meridian/cli` itself does not resolve: match the name too.
      to: { path: [pkg('cli'), '^@meridian/cli(/|$)'] },
    },

    // --- thin HTTP ------------------------------------------------------------------------------
    {
      name: 'routes-no-storage-drivers',
      severity: 'error',
      comment:
        'A route handler parses input, makes one domain call and writes the response. It may ' +
        'name storage *types* (import type), but never loads a storage driver or S3 at runtime: ' +
        'the domain layer talks to storage and translates its errors.',
      from: { path: '^packages/registry/src/routes/' },
      to: {
        path: [pkg('storage'), '(^|node_modules/)@aws-sdk/'],
        dependencyTypesNot: ['type-only'],
      },
    },
    {
      name: 'routes-no-queues-or-replication',
      severity: 'error',
      comment:
        'Handlers never enqueue jobs: replication subscribes to domain events. No bullmq, ' +
        'ioredis or @meridian/replication in route files (not even types).',
      from: { path: '^packages/registry/src/routes/' },
      to: { path: ['(^|node_modules/)(bullmq|ioredis)(/|$)', pkg('replication', 'webhooks')] },
    },

    // --- resolution ----------------------------------------------------------------------------
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment:
        'An import that cannot be resolved cannot be checked against the rules above (a missing ' +
        'dependency, or an @meridian/* name the tsconfig paths do not map).',
      from: { path: '^packages/[^/]+/src/' },
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^packages/[^/]+/dist/' },
    // `import type` counts: a type-only import still ties the packages' builds together and
    // still closes a cycle for tsc's project references.
    tsPreCompilationDeps: true,
    // `@meridian/<x>` → `packages/<x>/src`, as in jest's moduleNameMapper.
    tsConfig: { fileName: 'tsconfig.test.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['require', 'node', 'default', 'types'],
      extensions: ['.ts', '.d.ts', '.js', '.cjs', '.mjs', '.json'],
      mainFields: ['types', 'main'],
    },
    moduleSystems: ['cjs', 'es6'],
    reporterOptions: { text: { highlightFocused: true } },
  },
};
