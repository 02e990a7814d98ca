/// <reference types="jest" />
import { describeListsAndWrites } from './suite-lists';
import { describeMovesAndKeys } from './suite-moves';
import { describeReads } from './suite-reads';
import { SLOW, type ObjectStoreFixture, type SuiteContext } from './suite-helpers';
import type { ObjectStore } from '../object-store';

export type { ObjectStoreFixture } from './suite-helpers';

/**
 * The one conformance suite every driver passes (distribution's `driver/testsuites`). Each test
 * works under its own key prefix, so the fixture needs only one empty store per run. Give S3 a
 * small `partSize` (5 MiB) so the 20 MiB cases exercise multipart uploads.
 */
export function describeObjectStore(
  name: string,
  factory: () => Promise<ObjectStoreFixture>,
): void {
  describe(`ObjectStore conformance: ${name}`, () => {
    let fixture: ObjectStoreFixture | undefined;
    let store: ObjectStore | undefined;
    let seq = 0;
    const s: SuiteContext = {
      fixture: () => fixture,
      store: () => {
        if (!store) throw new Error('the fixture failed to start');
        return store;
      },
      ns: () => `t${++seq}`,
    };

    beforeAll(async () => {
      fixture = await factory();
      store = fixture.store;
    }, SLOW);
    afterAll(async () => {
      await fixture?.cleanup();
    }, SLOW);

    describeReads(s);
    describeListsAndWrites(s);
    describeMovesAndKeys(s);
  });
}
