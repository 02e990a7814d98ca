import { eventsJournaled, eventsLag } from '../metrics';
import type { RegistryEvents } from './events';

/**
 * The metrics subscriber: counts journaled events by kind and, on each scrape, how far every
 * durable subscriber is behind the journal.
 */
export async function attachEventMetrics(events: RegistryEvents): Promise<() => Promise<void>> {
  const detach = await events.attach({
    name: 'metrics',
    deliver: (e) => {
      eventsJournaled.inc({ kind: e.type });
    },
  });
  const collect = (): void => {
    const last = events.journal.last;
    for (const [subscriber, offset] of Object.entries(events.dispatcher.acknowledged()))
      eventsLag.set({ subscriber }, last - offset);
  };
  const timer = setInterval(collect, 5000).unref();
  collect();
  return async () => {
    clearInterval(timer);
    await detach();
  };
}
