import { Topology, type GatewayRegion } from './topology';

const regions: GatewayRegion[] = [
  { name: 'eastus', role: 'primary', endpoint: 'http://10.0.0.1:5000' },
  { name: 'westeurope', role: 'replica', endpoint: 'http://10.1.0.1:5000' },
  { name: 'southeastasia', role: 'replica', endpoint: 'http://10.2.0.1:5000' },
];
const names = (rs: GatewayRegion[]) => rs.map((r) => r.name);

describe('Topology.homeOf', () => {
  const t = new Topology({
    regions,
    clients: [
      { cidr: '10.1.0.0/16', region: 'westeurope' },
      { cidr: '10.1.2.0/24', region: 'southeastasia' }, // shadowed: first match wins
      { cidr: '2001:db8:2::/48', region: 'southeastasia' },
      { cidr: '127.0.0.2/32', region: 'westeurope' },
    ],
  });

  it('maps an address to the first rule whose CIDR holds it', () => {
    expect(t.homeOf('10.1.2.3')).toBe('westeurope');
    expect(t.homeOf('10.1.255.255')).toBe('westeurope');
    expect(t.homeOf('127.0.0.2')).toBe('westeurope');
    expect(t.homeOf('2001:db8:2:ffff::1')).toBe('southeastasia');
  });

  it('reads IPv4-mapped IPv6 addresses (what a dual-stack socket reports) as IPv4', () => {
    expect(t.homeOf('::ffff:10.1.0.9')).toBe('westeurope');
    expect(t.homeOf('::ffff:127.0.0.2')).toBe('westeurope');
  });

  it('sends unmatched, missing and unparsable addresses to the primary by default', () => {
    expect(t.homeOf('10.2.0.1')).toBe('eastus');
    expect(t.homeOf('127.0.0.3')).toBe('eastus');
    expect(t.homeOf('2001:db8:3::1')).toBe('eastus');
    expect(t.homeOf(undefined)).toBe('eastus');
    expect(t.homeOf('not-an-address')).toBe('eastus');
  });

  it('uses the configured default region when no rule matches', () => {
    const d = new Topology({ regions, defaultRegion: 'southeastasia' });
    expect(d.homeOf('192.0.2.1')).toBe('southeastasia');
    expect(d.homeOf('garbage')).toBe('southeastasia');
  });

  it('refuses a topology it cannot route', () => {
    expect(() => new Topology({ regions: regions.slice(1) })).toThrow(/primary/);
    expect(
      () => new Topology({ regions, clients: [{ cidr: '10.0.0.0/8', region: 'mars' }] }),
    ).toThrow(/unknown region mars/);
    expect(() => new Topology({ regions, defaultRegion: 'mars' })).toThrow(/mars/);
    expect(
      () => new Topology({ regions, clients: [{ cidr: '10.0.0.0/33', region: 'eastus' }] }),
    ).toThrow();
  });
});

describe('Topology.readOrder', () => {
  it('puts home first, then the others by measured latency (unknown last)', () => {
    const t = new Topology({ regions });
    const latency = new Map([
      ['eastus', 80],
      ['southeastasia', 20],
    ]);
    expect(names(t.readOrder('westeurope', latency))).toEqual([
      'westeurope',
      'southeastasia',
      'eastus',
    ]);
    expect(names(t.readOrder('eastus', new Map([['westeurope', 5]])))).toEqual([
      'eastus',
      'westeurope',
      'southeastasia',
    ]);
  });

  it('follows a configured preference, appending regions it leaves out', () => {
    const t = new Topology({
      regions,
      preference: { southeastasia: ['southeastasia', 'eastus', 'nowhere'] },
    });
    const latency = new Map([['westeurope', 1]]);
    expect(names(t.readOrder('southeastasia', latency))).toEqual([
      'southeastasia',
      'eastus',
      'westeurope',
    ]);
    // homes without a preference still go by latency
    expect(names(t.readOrder('eastus', latency))).toEqual([
      'eastus',
      'westeurope',
      'southeastasia',
    ]);
  });

  it('never loses a region, whatever the latency map holds', () => {
    const t = new Topology({ regions });
    for (const home of names(regions)) {
      const order = names(t.readOrder(home, new Map([['ghost', 1]])));
      expect(order[0]).toBe(home);
      expect([...order].sort()).toEqual(names(regions).sort());
    }
  });
});
