// The message ids a device has already handled, so a redelivery is acked again but not handed to the app
// twice (SPEC §5.5: at-least-once with a stable id). Bounded: the oldest ids are forgotten first.

export const DEFAULT_RECENT_IDS = 10_000;

export class RecentIds {
  // A Set iterates in insertion order, so its first element is always the oldest: eviction is O(1).
  private readonly ids = new Set<string>();
  readonly capacity: number;

  constructor(capacity: number = DEFAULT_RECENT_IDS) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError('capacity must be a positive integer');
    this.capacity = capacity;
  }

  has(id: string): boolean {
    return this.ids.has(id);
  }

  /** Remembers an id; true when it was not remembered already. */
  remember(id: string): boolean {
    if (this.ids.has(id)) return false;
    this.ids.add(id);
    if (this.ids.size > this.capacity) {
      const oldest = this.ids.values().next().value;
      if (oldest !== undefined) this.ids.delete(oldest);
    }
    return true;
  }

  get size(): number {
    return this.ids.size;
  }
}
