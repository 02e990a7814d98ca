import type { Dirent } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { compareKeys, isValidSegment, validatePrefix } from './keys';
import type { ListOptions, ListPage, ObjectInfo } from './object-store';

const DEFAULT_LIMIT = 1000;

type Entry = { kind: 'object'; key: string } | { kind: 'prefix'; prefix: string };

/**
 * S3 `ListObjectsV2` semantics over a directory tree: keys in byte order, `delimiter` grouping
 * into common prefixes, `limit`, and `cursor` (the last key or prefix returned). Only the tree
 * under the prefix is read; with delimiter `/` only one directory (plus a probe of each
 * sub-directory for at least one object, so empty directories are not prefixes).
 */
export class FsLister {
  /** `reserved`: a top-level directory of the root that is not part of the keyspace. */
  constructor(
    private readonly root: string,
    private readonly reserved: string,
  ) {}

  async list(prefix: string, opts: ListOptions = {}): Promise<ListPage> {
    validatePrefix(prefix);
    const limit = opts.limit ?? DEFAULT_LIMIT;
    const { delimiter, cursor } = opts;
    const cut = prefix.lastIndexOf('/') + 1;
    const dirRel = prefix.slice(0, cut);
    const partial = prefix.slice(cut);
    if (dirRel.startsWith(`${this.reserved}/`)) return { objects: [], prefixes: [] };

    const source =
      delimiter === '/'
        ? this.oneLevel(dirRel, partial, cursor)
        : grouped(this.walk(dirRel, partial, cursor), prefix, delimiter);
    const page: Entry[] = [];
    let more = false;
    for await (const entry of source) {
      const name = entry.kind === 'object' ? entry.key : entry.prefix;
      if (cursor !== undefined && name <= cursor) continue;
      if (page.length === limit) {
        more = true;
        break;
      }
      page.push(entry);
    }
    const objects = await Promise.all(
      page.flatMap((e) => (e.kind === 'object' ? [this.statQuietly(e.key)] : [])),
    );
    const last = page[page.length - 1];
    return {
      objects: objects.filter((o): o is ObjectInfo => o !== undefined),
      prefixes: page.flatMap((e) => (e.kind === 'prefix' ? [e.prefix] : [])),
      ...(more && last ? { cursor: last.kind === 'object' ? last.key : last.prefix } : {}),
    };
  }

  /** `rel` is built from validated segments only (the prefix, or names that passed the check). */
  private abs(rel: string): string {
    return path.join(this.root, ...rel.split('/').filter((s) => s !== ''));
  }

  private async statQuietly(key: string): Promise<ObjectInfo | undefined> {
    const st = await fs.stat(this.abs(key)).catch(() => undefined);
    return st?.isFile() ? { key, size: st.size, modified: st.mtime } : undefined;
  }

  private async readDir(rel: string, namePrefix: string): Promise<Dirent[]> {
    const entries = await fs.readdir(this.abs(rel), { withFileTypes: true }).catch((e: unknown) => {
      const code = (e as { code?: unknown } | null)?.code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return [];
      throw e;
    });
    return entries.filter(
      (d) =>
        d.name.startsWith(namePrefix) &&
        isValidSegment(d.name) &&
        !(rel === '' && d.name === this.reserved) &&
        (d.isFile() || d.isDirectory()),
    );
  }

  /** Entry names of one directory, a sub-directory as `name/`: sorted, that is byte order. */
  private async sortedNames(rel: string, namePrefix: string): Promise<string[]> {
    const names = (await this.readDir(rel, namePrefix)).map((d) =>
      d.isDirectory() ? `${rel}${d.name}/` : `${rel}${d.name}`,
    );
    return names.sort(compareKeys);
  }

  /** Delimiter `/`: one readdir; sub-directories holding at least one object are prefixes. */
  private async *oneLevel(rel: string, partial: string, cursor?: string): AsyncGenerator<Entry> {
    for (const name of await this.sortedNames(rel, partial)) {
      if (cursor !== undefined && name <= cursor) continue;
      if (!name.endsWith('/')) yield { kind: 'object', key: name };
      else if (await this.holdsObject(name)) yield { kind: 'prefix', prefix: name };
    }
  }

  private async holdsObject(rel: string): Promise<boolean> {
    const entries = await this.readDir(rel, '');
    if (entries.some((d) => d.isFile())) return true;
    for (const d of entries) {
      if (d.isDirectory() && (await this.holdsObject(`${rel}${d.name}/`))) return true;
    }
    return false;
  }

  /**
   * Every key under `rel` whose first segment starts with `partial`, in byte order. A directory
   * sorts as `name/`, which puts its keys exactly where they belong among its siblings'; a
   * subtree wholly at or before `cursor` is skipped without being read.
   */
  private async *walk(rel: string, partial: string, cursor?: string): AsyncGenerator<string> {
    for (const name of await this.sortedNames(rel, partial)) {
      if (name.endsWith('/')) {
        if (cursor !== undefined && name < cursor && !cursor.startsWith(name)) continue;
        yield* this.walk(name, '', cursor);
      } else if (cursor === undefined || name > cursor) {
        yield name;
      }
    }
  }
}

/** S3 common-prefix grouping of a sorted key stream (keys sharing a group are adjacent). */
async function* grouped(
  keys: AsyncIterable<string>,
  prefix: string,
  delimiter: string | undefined,
): AsyncGenerator<Entry> {
  let lastGroup: string | undefined;
  for await (const key of keys) {
    const at = delimiter === undefined ? -1 : key.indexOf(delimiter, prefix.length);
    if (at < 0 || delimiter === undefined) {
      yield { kind: 'object', key };
      continue;
    }
    const group = key.slice(0, at + delimiter.length);
    if (group !== lastGroup) yield { kind: 'prefix', prefix: group };
    lastGroup = group;
  }
}
