import { paginate } from './repository-metadata';

const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();
// Three items share a time: a lexical `last` cannot page this order, the cursor can.
const items = [
  { name: 'a', lastUpdateTime: at(3) },
  { name: 'b', lastUpdateTime: at(1) },
  { name: 'c', lastUpdateTime: at(2) },
  { name: 'd', lastUpdateTime: at(2) },
  { name: 'e', lastUpdateTime: at(2) },
];
const key = (x: { name: string }) => x.name;

function all(orderby: 'timedesc' | 'timeasc' | undefined, n: number): string[][] {
  const pages: string[][] = [];
  let last: string | undefined;
  for (;;) {
    const p = paginate(items, { n, last, orderby }, key);
    expect(p.total).toBe(5);
    pages.push(p.items.map(key));
    if (!p.next) return pages;
    last = p.next;
  }
}

describe('paginate', () => {
  test('by name, `last` is the previous page’s last name', () => {
    expect(all(undefined, 2)).toEqual([['a', 'b'], ['c', 'd'], ['e']]);
    expect(paginate(items, { n: 2 }, key).next).toBe('b');
  });

  test('by time, an opaque cursor pages through ties without loss or repeat', () => {
    expect(all('timedesc', 2)).toEqual([['a', 'c'], ['d', 'e'], ['b']]);
    expect(all('timeasc', 1)).toEqual([['b'], ['c'], ['d'], ['e'], ['a']]);
    expect(paginate(items, { n: 2, orderby: 'timedesc' }, key).next).toMatch(/^t\./);
  });

  test('by time, a plain name as `last` continues after that item; junk starts over', () => {
    expect(paginate(items, { n: 2, orderby: 'timedesc', last: 'c' }, key).items.map(key)).toEqual([
      'd',
      'e',
    ]);
    expect(
      paginate(items, { n: 1, orderby: 'timedesc', last: 't.@@' }, key).items.map(key),
    ).toEqual(['a']);
  });

  test('n is capped at 1000', () => {
    const many = Array.from({ length: 1500 }, (_, i) => ({
      name: String(i).padStart(4, '0'),
      lastUpdateTime: at(0),
    }));
    const p = paginate(many, { n: 5000 }, key);
    expect(p.items).toHaveLength(1000);
    expect(p.next).toBe('0999');
  });
});
