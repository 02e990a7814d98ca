/**
 * deploy/kubernetes/ checked without a cluster: every region's overlay is rendered with
 * `kubectl kustomize`, validated against the Kubernetes API schemas (kubernetes-models, through
 * test/helpers/validate-kubernetes.mjs), and checked for consistency: the configuration each
 * container runs with loads through loadConfig (the mounted ConfigMap, its MERIDIAN_* env), the
 * probes hit /readyz and /healthz on the ports the processes listen on, Services and disruption
 * budgets select pods that exist, secrets are referenced and never inlined, and every region
 * (the primary too) runs several nodes.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import {
  configEnvNames,
  loadConfig,
  NodeConfigSchema,
  resolveNode,
  type NodeConfig,
} from '../packages/cli/src/config';

const ROOT = resolve(__dirname, '..');
const K8S = join(ROOT, 'deploy/kubernetes');
const OVERLAYS = readdirSync(join(K8S, 'overlays')).sort();

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    configMapKeyRef?: { name: string; key: string };
    secretKeyRef?: { name: string; key: string; optional?: boolean };
  };
}
interface Probe {
  httpGet?: { path: string; port: string | number };
}
interface Container {
  name: string;
  image: string;
  args?: string[];
  ports?: { name?: string; containerPort: number }[];
  env?: EnvVar[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  resources?: { requests?: { cpu?: string; memory?: string }; limits?: { memory?: string } };
  volumeMounts?: { name: string; mountPath: string }[];
}
interface PodSpec {
  containers: Container[];
  volumes?: { name: string; configMap?: { name: string }; emptyDir?: object }[];
}
interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  data?: Record<string, string>;
  spec?: {
    replicas?: number;
    selector?: { matchLabels?: Record<string, string> } & Record<string, string>;
    template?: { metadata: { labels: Record<string, string> }; spec: PodSpec };
    ports?: { name?: string; port: number; targetPort: string | number }[];
    podSelector?: { matchLabels?: Record<string, string> };
    ingress?: { ports?: { port: number }[] }[];
    scaleTargetRef?: { kind: string; name: string };
  };
}

function render(overlay: string): { text: string; objects: K8sObject[] } {
  let text: string;
  try {
    text = execFileSync('kubectl', ['kustomize', join(K8S, 'overlays', overlay)], {
      encoding: 'utf8',
    });
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT')
      throw new Error('kubectl is not installed (it renders the Kustomize overlays)');
    throw err;
  }
  const objects = parseAllDocuments(text)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
  return { text, objects };
}

const matches = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

/** Placeholder values for what the Secret holds, so the configuration can load as in the pod. */
const SECRET_VALUES: Record<string, string> = {
  'redis-password': 'placeholder',
  's3-access-key-id': 'placeholder',
  's3-secret-access-key': 'placeholder',
  'owner-password': 'placeholder',
};

describe.each(OVERLAYS)('deploy/kubernetes/overlays/%s', (region) => {
  const { text, objects } = render(region);
  const of = (kind: string) => objects.filter((o) => o.kind === kind);
  const byName = (kind: string, name: string) => of(kind).find((o) => o.metadata.name === name);
  const configMap = (name: string) => of('ConfigMap').find((c) => c.metadata.name === name)!;
  const deployments = of('Deployment');
  const component = (d: K8sObject) =>
    d.spec!.template!.metadata.labels['app.kubernetes.io/component'];

  /** The env a container sees: literal values, ConfigMap keys, and placeholders for secrets. */
  function containerEnv(c: Container): Record<string, string> {
    const env: Record<string, string> = {};
    for (const e of c.env ?? []) {
      if (e.value !== undefined) env[e.name] = e.value;
      const cm = e.valueFrom?.configMapKeyRef;
      if (cm) env[e.name] = configMap(cm.name).data![cm.key]!;
      const secret = e.valueFrom?.secretKeyRef;
      if (secret) env[e.name] = SECRET_VALUES[secret.key]!;
    }
    return env;
  }
  /** `$(VAR)` in args, as the kubelet expands it. */
  const expand = (arg: string, env: Record<string, string>) =>
    arg.replace(/\$\((\w+)\)/g, (_, v: string) => env[v] ?? '');
  const flag = (args: string[], name: string) => args[args.indexOf(name) + 1];

  /** Loads the configuration the container runs with, as `meridian <command>` would. */
  function containerConfig(d: K8sObject, c: Container): NodeConfig {
    const env = containerEnv(c);
    const args = (c.args ?? []).map((a) => expand(a, env));
    const file = flag(args, '--config')!;
    const mount = c.volumeMounts!.find((m) => file.startsWith(`${m.mountPath}/`))!;
    const volume = d.spec!.template!.spec.volumes!.find((v) => v.name === mount.name)!;
    const data = configMap(volume.configMap!.name).data!;
    const dir = mkdtempSync(join(tmpdir(), 'meridian-k8s-'));
    try {
      const local = join(dir, file.slice(mount.mountPath.length + 1));
      writeFileSync(local, data[file.slice(mount.mountPath.length + 1)]!);
      const serve = args[0] === 'serve';
      return loadConfig(NodeConfigSchema, {
        file: local,
        env: Object.fromEntries(
          Object.entries(env).filter(
            ([k]) => k.startsWith('MERIDIAN_') && k !== 'MERIDIAN_OWNER_PASSWORD',
          ),
        ),
        overrides: serve ? {} : { region: undefined },
        checkRegion: serve,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('renders objects that are valid against the Kubernetes API schemas', () => {
    const problems = JSON.parse(
      execFileSync(process.execPath, [join(ROOT, 'test/helpers/validate-kubernetes.mjs')], {
        input: text,
        encoding: 'utf8',
      }),
    ) as unknown[];
    expect(problems).toEqual([]);
    expect(objects.length).toBeGreaterThan(5);
    for (const o of objects)
      expect({ o: o.metadata.name, ns: o.metadata.namespace }).toEqual({
        o: o.metadata.name,
        ns: 'meridian',
      });
  });

  it('runs nodes and a gateway, and a worker exactly where the region is a replica', () => {
    const node = deployments.find((d) => component(d) === 'node')!;
    const c = containerConfig(node, node.spec!.template!.spec.containers[0]!);
    expect(c.region).toBe(region);
    const role = c.regions.find((r) => r.name === region)!.role;
    expect(deployments.map(component).sort()).toEqual(
      role === 'replica' ? ['gateway', 'node', 'worker'] : ['gateway', 'node'],
    );
    const worker = deployments.find((d) => component(d) === 'worker');
    if (worker) {
      const container = worker.spec!.template!.spec.containers[0]!;
      const args = container.args!.map((a) => expand(a, containerEnv(container)));
      expect(args[0]).toBe('worker');
      expect(flag(args, '--region')).toBe(region);
    }
    const gateway = deployments.find((d) => component(d) === 'gateway')!;
    const g = containerConfig(gateway, gateway.spec!.template!.spec.containers[0]!);
    expect(g.gateway.defaultRegion).toBe(region);
    // Every region, the primary too, runs several nodes (ADR 0024) and scales them on load.
    expect(node.spec!.replicas).toBeGreaterThanOrEqual(2);
    const hpa = byName('HorizontalPodAutoscaler', 'meridian-node')!;
    expect(hpa.spec!.scaleTargetRef).toMatchObject({
      kind: 'Deployment',
      name: node.metadata.name,
    });
  });

  it('gives every container a configuration that loads, with only MERIDIAN_* keys the schema has', () => {
    const known = configEnvNames(NodeConfigSchema);
    for (const d of deployments)
      for (const container of d.spec!.template!.spec.containers) {
        for (const e of container.env ?? [])
          if (e.name.startsWith('MERIDIAN_') && e.name !== 'MERIDIAN_OWNER_PASSWORD')
            expect({ env: e.name, known: known.has(e.name) }).toEqual({ env: e.name, known: true });
        const c = containerConfig(d, container);
        expect(c.regions.length).toBe(3);
        // Redis through Sentinel, its password from the Secret.
        expect(c.redis?.sentinels?.length).toBeGreaterThanOrEqual(3);
        expect(c.redis?.password).toBe(SECRET_VALUES['redis-password']);
      }
  });

  it('probes /readyz and /healthz on the ports the processes listen on', () => {
    for (const d of deployments) {
      const container = d.spec!.template!.spec.containers[0]!;
      const c = containerConfig(d, container);
      const command = container.args![0];
      const listen =
        command === 'serve'
          ? resolveNode(c).listen
          : command === 'worker'
            ? c.worker.metricsListen!
            : c.gateway.listen[0]!;
      const port = Number(listen.slice(listen.lastIndexOf(':') + 1));
      expect(listen.startsWith('0.0.0.0:')).toBe(true);
      const portOf = (p: string | number) =>
        typeof p === 'number' ? p : container.ports!.find((x) => x.name === p)?.containerPort;
      const probe = (p?: Probe) =>
        p?.httpGet && { path: p.httpGet.path, port: portOf(p.httpGet.port) };
      expect({ command, liveness: probe(container.livenessProbe) }).toEqual({
        command,
        liveness: { path: '/healthz', port },
      });
      // A node is ready when its storage and Redis answer; workers and gateways have /healthz.
      expect({ command, readiness: probe(container.readinessProbe) }).toEqual({
        command,
        readiness: { path: command === 'serve' ? '/readyz' : '/healthz', port },
      });
      expect(container.resources?.requests?.cpu).toBeDefined();
      expect(container.resources?.requests?.memory).toBeDefined();
      expect(container.resources?.limits?.memory).toBeDefined();
      if (command === 'serve') {
        // The event journal is written to a writable volume (the image's /app is read-only).
        const journal = c.events.journalDir!;
        const mount = container.volumeMounts!.find((m) => journal.startsWith(`${m.mountPath}/`));
        expect(mount).toBeDefined();
      }
    }
  });

  it('selects existing pods from every Service, disruption budget and network policy', () => {
    const pods = deployments.map((d) => ({
      labels: d.spec!.template!.metadata.labels,
      ports: d.spec!.template!.spec.containers.flatMap((c) => c.ports ?? []),
    }));
    for (const s of of('Service')) {
      const selected = pods.filter((p) =>
        matches(s.spec!.selector as Record<string, string>, p.labels),
      );
      expect({ service: s.metadata.name, pods: selected.length }).toEqual({
        service: s.metadata.name,
        pods: 1,
      });
      for (const port of s.spec!.ports!)
        expect(
          selected[0]!.ports.some(
            (p) => p.name === port.targetPort || p.containerPort === port.targetPort,
          ),
        ).toBe(true);
    }
    for (const pdb of of('PodDisruptionBudget'))
      expect(pods.filter((p) => matches(pdb.spec!.selector!.matchLabels!, p.labels)).length).toBe(
        1,
      );
    expect(
      of('PodDisruptionBudget').some(
        (p) => p.spec!.selector!.matchLabels!['app.kubernetes.io/component'] === 'node',
      ),
    ).toBe(true);
    // Every pod is under the default deny, and a policy of its own opens the ports it serves on.
    const policies = of('NetworkPolicy');
    for (const p of pods) {
      const applying = policies.filter((n) =>
        matches(n.spec!.podSelector!.matchLabels ?? {}, p.labels),
      );
      const open = new Set(
        applying
          .flatMap((n) => (n.spec!.ingress ?? []).flatMap((i) => i.ports ?? []))
          .map((x) => x.port),
      );
      expect(applying.some((n) => !n.spec!.ingress)).toBe(true);
      for (const port of p.ports)
        expect({ port: port.containerPort, open: open.has(port.containerPort) }).toEqual({
          port: port.containerPort,
          open: true,
        });
    }
  });

  it('references secrets and never inlines them; pins the image', () => {
    expect(of('Secret')).toEqual([]);
    for (const d of deployments)
      for (const c of d.spec!.template!.spec.containers) {
        expect(c.image).toMatch(/^[\w.-]+(\/[\w.-]+)+:[\w.-]+$/);
        expect(c.image).not.toMatch(/:latest$/);
        for (const e of c.env ?? []) {
          const secret = e.valueFrom?.secretKeyRef;
          if (/PASSWORD|SECRET|ACCESS_KEY/.test(e.name))
            expect({ env: e.name, fromSecret: secret?.name }).toEqual({
              env: e.name,
              fromSecret: 'meridian-secrets',
            });
          if (secret) expect(Object.keys(SECRET_VALUES)).toContain(secret.key);
        }
      }
    // Nor in the configuration: no password in a Redis URL, no S3 key in a storage URL.
    for (const cm of of('ConfigMap'))
      for (const v of Object.values(cm.data ?? {}))
        expect(v).not.toMatch(/:\/\/[^/\s]*:[^@/\s]+@|secretAccessKey|password:/i);
  });
});
