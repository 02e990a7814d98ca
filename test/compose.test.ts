/**
 * docker-compose.yml checked statically (no Docker on CI): every service's image or build,
 * mounted files, commands and options (against the built CLI's own --help), MERIDIAN_*
 * variables (against the config schema), ports and addresses, the mounted cluster config (through
 * loadConfig), buckets, netem rules, the gateway's client networks, the Prometheus scrape targets
 * and the Grafana provisioning all agree with each other and with the repository.
 */
import { execFileSync } from 'node:child_process';
import {
  accessSync,
  constants,
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix, resolve } from 'node:path';
import { parse } from 'yaml';
import { parseS3Url } from '@meridian/storage';
import {
  configEnvNames,
  loadConfig,
  NodeConfigSchema,
  resolveNode,
  type NodeConfig,
} from '../packages/cli/src/config';

const ROOT = resolve(__dirname, '..');
const CLI = join(ROOT, 'packages/cli/dist/main.js');
const REGIONS = ['eastus', 'westeurope', 'southeastasia'];

interface Service {
  image?: string;
  build?: { context: string; dockerfile?: string; target?: string };
  command?: string[] | string;
  entrypoint?: string[] | string;
  environment?: Record<string, string | number | boolean>;
  volumes?: string[];
  ports?: string[];
  networks?: string[] | Record<string, { ipv4_address?: string } | null>;
  depends_on?: string[] | Record<string, { condition: string }>;
  healthcheck?: unknown;
  profiles?: string[];
  cap_add?: string[];
  user?: string;
  restart?: string;
}

interface Compose {
  services: Record<string, Service>;
  networks: Record<string, { ipam?: { config: { subnet: string; ip_range?: string }[] } }>;
  volumes?: Record<string, unknown>;
}

const readYaml = <T>(rel: string): T =>
  parse(readFileSync(join(ROOT, rel), 'utf8'), { merge: true }) as T;

/**
 * Compose's variable substitution (`${VAR}`, `${VAR:-default}`, `${VAR:?error}`, `$$`), with the
 * variables a user starts from: .env.example (what `cp .env.example .env` gives). A required
 * variable that .env.example lacks fails here, as `docker compose up` would.
 */
function interpolate(text: string, vars: Record<string, string>): string {
  return text.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])([^}]*))?\}/g,
    (whole, name: string | undefined, colon: string, op: string, arg: string) => {
      if (whole === '$$') return '$';
      const value = vars[name!];
      const unset = value === undefined || (colon === ':' && value === '');
      if (!unset) return value;
      if (op === '-') return arg;
      if (op === '?')
        throw new Error(`docker-compose.yml: required variable ${name} unset: ${arg}`);
      return '';
    },
  );
}
const envExample: Record<string, string> = Object.fromEntries(
  readFileSync(join(ROOT, '.env.example'), 'utf8')
    .split('\n')
    .filter((l) => /^[A-Z_][A-Z0-9_]*=/.test(l))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
);
const composeText = readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8');
/** The file as written, variables unresolved (to see where a value comes from). */
const rawCompose = parse(composeText, { merge: true }) as Compose;
/** The file as `docker compose` runs it after `cp .env.example .env`. */
const compose = parse(interpolate(composeText, envExample), { merge: true }) as Compose;
const services = Object.entries(compose.services);
const DOCKERFILE = 'deploy/Dockerfile';
const S3_DOCKERFILE = 'deploy/ceph/Dockerfile';
/** Services running Meridian itself (built from deploy/Dockerfile). */
const meridian = services.filter(([, s]) => s.build?.dockerfile === DOCKERFILE);
const env = (s: Service): Record<string, string> =>
  Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, String(v)]));
const args = (s: Service): string[] => (Array.isArray(s.command) ? s.command : []);
const flag = (s: Service, name: string): string | undefined => {
  const a = args(s);
  const i = a.indexOf(name);
  return i >= 0 ? a[i + 1] : undefined;
};
const networksOf = (s: Service): Record<string, { ipv4_address?: string } | null> =>
  Array.isArray(s.networks)
    ? Object.fromEntries(s.networks.map((n) => [n, null]))
    : (s.networks ?? {});

// --- IPv4 ---------------------------------------------------------------------------------------
function ip4(a: string): number {
  const parts = a.split('.').map(Number);
  expect(parts).toHaveLength(4);
  return parts.reduce((n, p) => n * 256 + p, 0);
}
function inCidr(addr: string, cidr: string): boolean {
  const [net, bits] = cidr.split('/') as [string, string];
  const size = 2 ** (32 - Number(bits));
  return Math.floor(ip4(addr) / size) === Math.floor(ip4(net) / size);
}
/** Whether CIDR `inner` lies within CIDR `outer`. */
function cidrWithin(inner: string, outer: string): boolean {
  return (
    Number(inner.split('/')[1]) >= Number(outer.split('/')[1]) &&
    inCidr(inner.split('/')[0]!, outer)
  );
}

// --- the CLI's own description of its commands ---------------------------------------------------
const help = (cmd: string[]): string =>
  execFileSync(process.execPath, [CLI, ...cmd, '--help'], { encoding: 'utf8' });
function cliCommands(): Set<string> {
  const out = help([]);
  const section = out.slice(out.indexOf('Commands:'));
  return new Set([...section.matchAll(/^ {2}([a-z][a-z-]*)/gm)].map((m) => m[1]!));
}
function cliOptions(command: string): Set<string> {
  return new Set(
    [...help([command]).matchAll(/^ {2}(?:-\w, )?(--[a-z][a-z-]*)/gm)].map((m) => m[1]!),
  );
}

/** The host file behind a container path, through the service's bind mounts. */
function hostPath(s: Service, containerPath: string): string | undefined {
  for (const v of s.volumes ?? []) {
    const [src, dst] = v.split(':') as [string, string];
    if (!src.startsWith('.')) continue;
    if (containerPath === dst) return join(ROOT, src);
    if (containerPath.startsWith(`${dst}/`))
      return join(ROOT, src, posix.relative(dst, containerPath));
  }
  return undefined;
}

/** The configuration a Meridian service runs with: mounted file, its MERIDIAN_* env, its flags. */
function serviceConfig(s: Service): NodeConfig {
  const file = hostPath(s, flag(s, '--config')!);
  expect(file).toBeDefined();
  const command = args(s)[0];
  const region = command === 'serve' ? flag(s, '--region') : undefined;
  return loadConfig(NodeConfigSchema, {
    file,
    env: Object.fromEntries(
      Object.entries(env(s)).filter(
        ([k]) => k.startsWith('MERIDIAN_') && k !== 'MERIDIAN_OWNER_PASSWORD',
      ),
    ),
    overrides: { region },
    checkRegion: region !== undefined,
  });
}

const portOf = (listen: string) => Number(listen.slice(listen.lastIndexOf(':') + 1));

describe('docker-compose.yml', () => {
  it('builds Meridian from deploy/Dockerfile and pins every other image to a tag', () => {
    const dockerfile = readFileSync(join(ROOT, DOCKERFILE), 'utf8');
    const stages = new Set([...dockerfile.matchAll(/^FROM \S+ AS (\S+)$/gim)].map((m) => m[1]));
    expect(meridian.map(([n]) => n).sort()).toEqual(
      [
        'gateway',
        ...REGIONS.map((r) => `node-${r}`),
        ...REGIONS.slice(1).map((r) => `worker-${r}`),
      ].sort(),
    );
    for (const [name, s] of services) {
      if (s.build) {
        expect({ name, context: existsSync(join(ROOT, s.build.context)) }).toEqual({
          name,
          context: true,
        });
        expect(existsSync(join(ROOT, s.build.context, s.build.dockerfile ?? 'Dockerfile'))).toBe(
          true,
        );
        if (s.build.target)
          expect({ name, stages: [...stages] }).toEqual({
            name,
            stages: expect.arrayContaining([s.build.target]) as unknown,
          });
      } else {
        expect({ name, image: s.image }).toEqual({
          name,
          image: expect.stringMatching(/^[\w./-]+:[\w.-]+$/) as unknown,
        });
      }
    }
  });

  it('mounts only files and folders that exist', () => {
    for (const [name, s] of services)
      for (const v of s.volumes ?? []) {
        const [src, dst] = v.split(':') as [string, string];
        expect(dst.startsWith('/')).toBe(true);
        if (src.startsWith('.')) {
          const p = join(ROOT, src);
          expect({ name, src, exists: existsSync(p) }).toEqual({ name, src, exists: true });
        } else expect(Object.keys(compose.volumes ?? {})).toContain(src);
      }
  });

  it('runs real CLI commands with real options', () => {
    const commands = cliCommands();
    const options = new Map<string, Set<string>>();
    for (const [name, s] of meridian) {
      const [command, ...rest] = args(s);
      expect({ name, command: commands.has(command!) }).toEqual({ name, command: true });
      if (!options.has(command!)) options.set(command!, cliOptions(command!));
      for (const a of rest.filter((x) => x.startsWith('--')))
        expect({ name, option: a, known: options.get(command!)!.has(a.split('=')[0]!) }).toEqual({
          name,
          option: a,
          known: true,
        });
    }
  });

  it('sets only MERIDIAN_* variables that are configuration keys', () => {
    const known = configEnvNames(NodeConfigSchema);
    expect(known.get('MERIDIAN_WORKER_METRICS_LISTEN')).toBe('worker.metricsListen');
    // The owner's first password: a secret the auth wiring reads, deliberately not a config key.
    const secrets = new Set(['MERIDIAN_OWNER_PASSWORD']);
    for (const [name, s] of services)
      for (const key of Object.keys(env(s)).filter(
        (k) => k.startsWith('MERIDIAN_') && !secrets.has(k),
      ))
        expect({ name, key, known: known.has(key) }).toEqual({ name, key, known: true });
  });

  it('gives every Meridian service a configuration that loads, and nodes the endpoints the cluster names', () => {
    for (const [name, s] of meridian) {
      const c = serviceConfig(s);
      expect(c.regions.map((r) => r.name)).toEqual(REGIONS);
      const command = args(s)[0];
      if (command === 'serve') {
        const region = c.regions.find((r) => r.name === c.region)!;
        const endpoint = new URL(region.endpoint);
        // The region's endpoint names this very service, on the port it listens on (all interfaces).
        expect(endpoint.hostname).toBe(name);
        const listen = resolveNode(c).listen;
        expect(listen).toBe(`0.0.0.0:${endpoint.port}`);
      }
      if (command === 'worker') {
        const r = flag(s, '--region');
        expect(c.regions.find((x) => x.name === r)?.role).toBe('replica');
        expect(c.worker.metricsListen).toBeDefined();
      }
      if (command === 'gateway') expect(c.gateway.listen.length).toBeGreaterThan(0);
      // Whatever the process talks to is a service of this file.
      const redis = new URL(c.redis!.url!);
      expect(compose.services[redis.hostname]).toBeDefined();
    }
  });

  it("puts each region's storage in its own bucket on its own S3 server (Ceph RGW), created at start, with the services' credentials", () => {
    const c = serviceConfig(compose.services['node-eastus']!);
    const dockerfile = readFileSync(join(ROOT, S3_DOCKERFILE), 'utf8');
    const rgwPort = /^\s*RGW_PORT=(\d+)/m.exec(dockerfile)?.[1];
    // The container runs the script the integration tests start Ceph with (test/helpers/ceph.ts).
    expect(readFileSync(join(ROOT, 'test/helpers/ceph.ts'), 'utf8')).toContain(
      "join(__dirname, '..', '..', 'deploy', 'ceph')",
    );
    expect(dockerfile).toMatch(
      /^COPY deploy\/ceph\/start-ceph\.sh .*\/usr\/local\/lib\/meridian-s3\/$/m,
    );
    expect(dockerfile).toMatch(
      /^ENTRYPOINT \[.*"\/usr\/local\/lib\/meridian-s3\/start-ceph\.sh"\]$/m,
    );
    expect(c.regions.map((r) => r.name)).toEqual(REGIONS);
    for (const r of c.regions) {
      const s3 = parseS3Url(r.storage);
      const server = compose.services[new URL(s3.endpoint!).hostname]!;
      expect({ region: r.name, server: server?.build?.dockerfile }).toEqual({
        region: r.name,
        server: S3_DOCKERFILE,
      });
      expect(s3.endpoint).toBe(`http://s3-${r.name}:${rgwPort}`);
      expect((env(server).S3_BUCKETS ?? '').split(' ')).toContain(s3.bucket);
      // Each region its own server, in its own region's subnet (so netem delays reach it).
      expect(networksOf(server).wan?.ipv4_address?.split('.').slice(0, 3)).toEqual(
        networksOf(compose.services[`node-${r.name}`]!).wan?.ipv4_address?.split('.').slice(0, 3),
      );
      for (const [, s] of meridian) {
        expect(env(s).AWS_ACCESS_KEY_ID).toBe(env(server).S3_ACCESS_KEY);
        expect(env(s).AWS_SECRET_ACCESS_KEY).toBe(env(server).S3_SECRET_KEY);
      }
      // The nodes and workers of the region wait for their server.
      for (const [name, s] of meridian.filter(
        ([, x]) => args(x)[0] !== 'gateway' && flag(x, '--region') === r.name,
      ))
        expect({ name, dep: (s.depends_on as Record<string, unknown>)[`s3-${r.name}`] }).toEqual({
          name,
          dep: { condition: 'service_healthy' },
        });
    }
    const s3Servers = services.filter(([, s]) => s.build?.dockerfile === S3_DOCKERFILE);
    expect(s3Servers.map(([n]) => n).sort()).toEqual(REGIONS.map((r) => `s3-${r}`).sort());
  });

  it('pulls no image that is gone (MinIO left Docker Hub in September 2026) and pins every image to a release', () => {
    const pulled = services.filter(([, s]) => !s.build).map(([, s]) => s.image!);
    for (const image of pulled) {
      expect({ image, latest: /:latest$/.test(image) }).toEqual({ image, latest: false });
      expect({ image, minio: /^(docker\.io\/)?minio\//.test(image) }).toEqual({
        image,
        minio: false,
      });
    }
    expect(composeText).not.toMatch(/\bminio\b/i);
    // The base images of what is built: ARG defaults that name a release, never `latest`.
    for (const file of [DOCKERFILE, S3_DOCKERFILE]) {
      const text = readFileSync(join(ROOT, file), 'utf8');
      const froms = [...text.matchAll(/^FROM (\S+)/gm)].map((m) => m[1]!);
      for (const from of froms.filter((f) => f.includes(':'))) {
        const resolved = from.replace(/\$\{(\w+)\}/g, (_, a: string) => {
          const v = new RegExp(`^ARG ${a}=(\\S+)$`, 'm').exec(text)?.[1];
          expect({ file, arg: a, pinned: v !== undefined && /^\d+$/.test(v) }).toEqual({
            file,
            arg: a,
            pinned: true,
          });
          return v!;
        });
        expect({ file, from: resolved }).toEqual({
          file,
          from: expect.stringMatching(/^(node|debian):\d+-slim$/) as unknown,
        });
      }
    }
  });

  it('publishes ports on 127.0.0.1 unless PUBLISH_ADDRESS says otherwise', () => {
    let published = 0;
    for (const [name, s] of services)
      for (const p of s.ports ?? []) {
        published++;
        expect({ name, port: p.split(':')[0] }).toEqual({ name, port: '127.0.0.1' });
      }
    for (const [name, s] of Object.entries(rawCompose.services))
      for (const p of s.ports ?? [])
        expect({ name, p }).toEqual({
          name,
          p: expect.stringMatching(/^\$\{PUBLISH_ADDRESS:-127\.0\.0\.1\}:\d+:\d+$/) as unknown,
        });
    expect(published).toBeGreaterThanOrEqual(6);
  });

  it('takes every secret from .env (.env.example committed, .env ignored)', () => {
    const secret = /PASSWORD|SECRET|ACCESS_KEY/;
    let secrets = 0;
    for (const [name, s] of Object.entries(rawCompose.services))
      for (const [key, value] of Object.entries(s.environment ?? {}).filter(([k]) =>
        secret.test(k),
      )) {
        secrets++;
        // A required variable: no default password anyone could guess from this file.
        expect({ name, key, value }).toEqual({
          name,
          key,
          value: expect.stringMatching(/^\$\{[A-Z_][A-Z0-9_]*:\?[^}]+\}$/) as unknown,
        });
      }
    expect(secrets).toBeGreaterThanOrEqual(10);
    for (const v of [...composeText.matchAll(/\$\{([A-Z_][A-Z0-9_]*):\?/g)].map((m) => m[1]!))
      expect({ v, inExample: v in envExample }).toEqual({ v, inExample: true });
    const ignored = execFileSync('git', ['check-ignore', '--no-index', '.env'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    expect(ignored.trim()).toBe('.env');
    expect(() =>
      execFileSync('git', ['check-ignore', '--no-index', '-q', '.env.example'], { cwd: ROOT }),
    ).toThrow();
  });

  it("keeps each node's event journal on a named volume the process can write", () => {
    // /app is root's and read-only to the `node` user: the default ./.data/events would fail.
    const dockerfile = readFileSync(join(ROOT, DOCKERFILE), 'utf8');
    const writable = /^RUN mkdir (\S+) && chown node:node \1$/m.exec(dockerfile)?.[1];
    expect(writable).toBe('/data');
    for (const [name, s] of meridian.filter(([, x]) => args(x)[0] === 'serve')) {
      const dir = serviceConfig(s).events.journalDir;
      const mount = (s.volumes ?? [])
        .map((v) => v.split(':'))
        .find(([, dst]) => dir !== undefined && (dir === dst || dir.startsWith(`${dst}/`)));
      expect({ name, dir, volume: mount?.[0], under: dir?.startsWith(`${writable}/`) }).toEqual({
        name,
        dir,
        volume: `${name}`,
        under: true,
      });
      expect(Object.keys(compose.volumes ?? {})).toContain(mount![0]);
    }
  });

  it('leaves no anonymous volume on S3-backed services', () => {
    // Meridian on S3 writes nothing locally: its image declares no VOLUME (which would leave an
    // anonymous volume behind every container), or each service mounts every declared one.
    for (const [file, users] of [
      [DOCKERFILE, meridian],
      [S3_DOCKERFILE, services.filter(([, s]) => s.build?.dockerfile === S3_DOCKERFILE)],
    ] as const) {
      const declared = [
        ...readFileSync(join(ROOT, file), 'utf8').matchAll(/^VOLUME (.+)$/gm),
      ].flatMap((m) =>
        m[1]!.startsWith('[') ? (JSON.parse(m[1]!) as string[]) : m[1]!.split(/\s+/),
      );
      for (const [name, s] of users)
        for (const path of declared)
          expect({
            name,
            path,
            mounted: (s.volumes ?? []).some((v) => v.split(':')[1] === path),
          }).toEqual({
            name,
            path,
            mounted: true,
          });
    }
    // The S3 servers keep their state (Ceph's BASE) on a named volume.
    const base = /BASE=(\S+)/.exec(readFileSync(join(ROOT, S3_DOCKERFILE), 'utf8'))?.[1];
    for (const [name, s] of services.filter(([, x]) => x.build?.dockerfile === S3_DOCKERFILE)) {
      const mount = (s.volumes ?? [])
        .map((v) => v.split(':'))
        .find(([, dst]) => base?.startsWith(`${dst}/`));
      expect({
        name,
        named:
          mount !== undefined && !mount[0]!.startsWith('.') && mount[0]! in (compose.volumes ?? {}),
      }).toEqual({
        name,
        named: true,
      });
    }
  });

  it('depends only on services that exist, waiting on health only where there is a check', () => {
    for (const [name, s] of services) {
      const deps = Array.isArray(s.depends_on)
        ? Object.fromEntries(s.depends_on.map((d) => [d, { condition: 'service_started' }]))
        : (s.depends_on ?? {});
      for (const [dep, { condition }] of Object.entries(deps)) {
        const target = compose.services[dep];
        expect({ name, dep, exists: !!target }).toEqual({ name, dep, exists: true });
        if (condition === 'service_healthy')
          expect({ name, dep, healthcheck: !!target!.healthcheck }).toEqual({
            name,
            dep,
            healthcheck: true,
          });
        if (condition === 'service_completed_successfully') expect(target!.restart).toBe('no');
      }
    }
  });

  it('publishes distinct host ports and fixed addresses inside their networks', () => {
    const hostPorts = new Map<string, string>();
    for (const [name, s] of services)
      for (const p of s.ports ?? []) {
        const parts = p.split(':');
        const hostPort = parts.length === 3 ? parts[1]! : parts[0]!;
        expect({ port: hostPort, taken: hostPorts.get(hostPort) }).toEqual({
          port: hostPort,
          taken: undefined,
        });
        hostPorts.set(hostPort, name);
      }
    const addresses = new Map<string, string>();
    for (const [name, s] of services)
      for (const [net, cfg] of Object.entries(networksOf(s))) {
        const ipam = compose.networks[net]?.ipam?.config[0];
        expect({ name, net, defined: !!compose.networks[net] }).toEqual({
          name,
          net,
          defined: true,
        });
        const addr = cfg?.ipv4_address;
        if (!addr) continue;
        expect({ name, addr, taken: addresses.get(addr) }).toEqual({
          name,
          addr,
          taken: undefined,
        });
        addresses.set(addr, name);
        expect(inCidr(addr, ipam!.subnet)).toBe(true);
        // Fixed addresses stay out of the range Docker hands out dynamically.
        if (ipam!.ip_range) expect(inCidr(addr, ipam!.ip_range)).toBe(false);
      }
  });

  it('adds inter-region latency only where tc can run, towards other regions, summing to realistic round trips', () => {
    const subnetOf = (region: string) => {
      const addr = networksOf(compose.services[`node-${region}`]!).wan?.ipv4_address;
      return `${addr!.split('.').slice(0, 3).join('.')}.0/24`;
    };
    const regionSubnets = new Map(REGIONS.map((r) => [subnetOf(r), r]));
    const delay = new Map<string, number>(); // "from>to" → ms
    for (const [name, s] of services) {
      const rules = env(s).NETEM_DELAY;
      if (!rules) continue;
      expect(s.cap_add).toContain('NET_ADMIN');
      expect(s.user).toBe('root'); // tc needs it; the entrypoint drops to `node` afterwards
      expect(s.build?.target).toBe('netem');
      const own = networksOf(s).wan!.ipv4_address!;
      const from = [...regionSubnets].find(([net]) => inCidr(own, net))![1];
      for (const rule of rules.split(/[ ,]+/)) {
        const [dest, value] = rule.split('=') as [string, string];
        const to = regionSubnets.get(dest);
        expect({ name, dest, region: to !== undefined && to !== from }).toEqual({
          name,
          dest,
          region: true,
        });
        const ms = Number(/^(\d+)ms$/.exec(value)?.[1]);
        const key = `${from}>${to}`;
        // Every container of a region delays the same way.
        if (delay.has(key)) expect({ name, key, ms }).toEqual({ name, key, ms: delay.get(key) });
        delay.set(key, ms);
      }
    }
    for (const [i, a] of REGIONS.entries())
      for (const b of REGIONS.slice(i + 1)) {
        const rtt = (delay.get(`${a}>${b}`) ?? 0) + (delay.get(`${b}>${a}`) ?? 0);
        expect({ pair: `${a}-${b}`, rtt: rtt >= 70 && rtt <= 160 }).toEqual({
          pair: `${a}-${b}`,
          rtt: true,
        });
      }
  });

  it("gives each region's clients a network the gateway maps to that region", () => {
    const gw = compose.services.gateway!;
    const c = serviceConfig(gw);
    expect(c.gateway.matchOn).toBe('source');
    for (const region of REGIONS) {
      const net = `clients-${region}`;
      const ipam = compose.networks[net]!.ipam!.config[0]!;
      const rule = c.gateway.clients.find((x) => x.region === region);
      // Docker gives the clients addresses from ip_range: the rule must cover it, and no other
      // rule may claim the network's gateway address (the host, through the published port).
      expect(rule && cidrWithin(ipam.ip_range!, rule.cidr)).toBe(true);
      expect(Object.keys(networksOf(gw))).toContain(net);
      expect(Object.keys(networksOf(compose.services[`client-${region}`]!))).toEqual([net]);
      expect(
        c.gateway.clients.some((x) => inCidr(ipam.subnet.replace(/0\/24$/, '1'), x.cidr)),
      ).toBe(false);
    }
    expect(c.gateway.defaultRegion).toBe('eastus');
    // Nodes believe the gateway's X-Forwarded-For (the client's address, for throttling and logs).
    const gatewayAddress = networksOf(gw).wan!.ipv4_address!;
    for (const [name, s] of meridian.filter(([, x]) => args(x)[0] === 'serve'))
      expect({ name, trusts: serviceConfig(s).auth.trustedProxies }).toEqual({
        name,
        trusts: expect.arrayContaining([gatewayAddress]) as unknown,
      });
    for (const region of REGIONS) expect(c.gateway.preference?.[region]?.[0]).toBe(region);
  });
});

describe('deploy/', () => {
  it('has a multi-stage, non-root, node:<LTS>-slim Dockerfile that runs the built CLI', () => {
    const text = readFileSync(join(ROOT, DOCKERFILE), 'utf8');
    const stages = text.split(/^FROM /m).slice(1);
    expect(stages.length).toBeGreaterThanOrEqual(3);
    // The image's Node is the one CI tests on (.ci/run), an LTS line (even major) that
    // package.json's engines admit.
    const image = Number(/^ARG NODE_VERSION=(\d+)$/m.exec(text)?.[1]);
    const ci = Number(
      /CI_NODE_VERSION=\$\{MERIDIAN_CI_NODE_VERSION:-(\d+)\.\d+\.\d+\}/.exec(
        readFileSync(join(ROOT, '.ci/run'), 'utf8'),
      )?.[1],
    );
    const engines = (
      JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } }
    ).engines.node;
    const minimum = Number(/^>=(\d+)$/.exec(engines)?.[1]);
    expect({ image, ci }).toEqual({ image: ci, ci });
    expect(image % 2).toBe(0);
    expect(minimum % 2).toBe(0);
    expect(image).toBeGreaterThanOrEqual(minimum);
    // Node 20 reached its end of life in April 2026.
    expect(minimum).toBeGreaterThanOrEqual(22);
    expect(text).toMatch(/^FROM node:\$\{NODE_VERSION\}-slim AS build$/m);
    expect(text).toMatch(/^FROM node:\$\{NODE_VERSION\}-slim AS runtime$/m);
    const pnpm = (
      JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
        packageManager: string;
      }
    ).packageManager.split('@')[1];
    expect(text).toContain(`ARG PNPM_VERSION=${pnpm}`);
    expect(text).toContain('pnpm install --frozen-lockfile');
    expect(text).toContain('--prod');
    const runtime = stages.find((s) => s.startsWith('node:${NODE_VERSION}-slim AS runtime'))!;
    expect(runtime).toMatch(/^USER node$/m);
    expect(runtime).toContain('ENTRYPOINT ["node", "packages/cli/dist/main.js"]');
    // The default target (the last stage) is the runtime image as is.
    expect(stages[stages.length - 1]!.trim()).toBe('runtime AS production');
    for (const m of text.matchAll(/^COPY (?!--from)(.+) (\S+)$/gm))
      for (const src of m[1]!.split(' ').filter((x) => !x.startsWith('--')))
        if (src !== '.')
          expect({ src, exists: existsSync(join(ROOT, src)) }).toEqual({ src, exists: true });
    expect(existsSync(join(ROOT, 'packages/cli/dist/main.js'))).toBe(true);
  });

  it('ships a netem entrypoint that is executable and valid sh', () => {
    const script = join(ROOT, 'deploy/netem-entrypoint.sh');
    accessSync(script, constants.X_OK);
    execFileSync('sh', ['-n', script]);
    expect(readFileSync(script, 'utf8')).toContain('node /app/packages/cli/dist/main.js');
  });

  it('scrapes every node, worker and the gateway on the port it serves /metrics on', () => {
    const prom = readYaml<{
      rule_files: string[];
      scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
    }>('deploy/prometheus/prometheus.yml');
    const promService = compose.services.prometheus!;
    for (const f of prom.rule_files) {
      // `dir/*.yml`: the folder is mounted and holds at least one match.
      const dir = hostPath(promService, posix.dirname(f)) ?? '';
      const pattern = new RegExp(`^${posix.basename(f).replace('.', '\\.').replace('*', '.*')}$`);
      expect(readdirSync(dir).filter((n) => pattern.test(n)).length).toBeGreaterThan(0);
    }
    const targets = new Set(
      prom.scrape_configs.flatMap((j) => j.static_configs.flatMap((s) => s.targets)),
    );
    for (const [name, s] of meridian) {
      const c = serviceConfig(s);
      const command = args(s)[0];
      const port =
        command === 'serve'
          ? portOf(resolveNode(c).listen)
          : command === 'worker'
            ? portOf(c.worker.metricsListen!)
            : portOf(c.gateway.listen[0]!);
      expect({ name, scraped: targets.has(`${name}:${port}`) }).toEqual({ name, scraped: true });
    }
    for (const t of targets) {
      const host = t.split(':')[0]!;
      if (host !== 'localhost') expect(compose.services[host]).toBeDefined();
    }
  });

  it('provisions Grafana with the Prometheus service and the dashboards folder', () => {
    const grafana = compose.services.grafana!;
    const ds = readYaml<{ datasources: { type: string; url: string; uid: string }[] }>(
      'deploy/grafana/provisioning/datasources/prometheus.yml',
    );
    const url = new URL(ds.datasources[0]!.url);
    expect(ds.datasources[0]!.type).toBe('prometheus');
    expect(compose.services[url.hostname]).toBe(compose.services.prometheus);
    expect(compose.services.prometheus!.ports!.map((p) => p.split(':').pop())).toContain(url.port);
    const dash = readYaml<{ providers: { options: { path: string } }[] }>(
      'deploy/grafana/provisioning/dashboards/meridian.yml',
    );
    expect(hostPath(grafana, dash.providers[0]!.options.path)).toBe(
      join(ROOT, 'deploy/grafana/dashboards'),
    );
    expect(hostPath(grafana, '/etc/grafana/provisioning/datasources/prometheus.yml')).toBe(
      join(ROOT, 'deploy/grafana/provisioning/datasources/prometheus.yml'),
    );
  });

  // No skip when promtool is missing: the check fails with a hint instead (CI installs it).
  it('passes promtool check config (with the rules it loads)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'meridian-prom-'));
    try {
      cpSync(join(ROOT, 'deploy/prometheus'), dir, { recursive: true });
      const cfg = join(dir, 'prometheus.yml');
      const text = readFileSync(cfg, 'utf8').replaceAll('/etc/prometheus/', `${dir}/`);
      writeFileSync(cfg, text);
      try {
        execFileSync('promtool', ['check', 'config', cfg], { encoding: 'utf8' });
      } catch (err) {
        if ((err as { code?: string }).code === 'ENOENT')
          throw new Error('promtool is not installed (apt-get install prometheus)');
        throw err;
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
