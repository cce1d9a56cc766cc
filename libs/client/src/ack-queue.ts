// What the device acks: the pushed ids it has acked, so a repeat is acked again but handed to the app once
// (SPEC §5.5), and the acks waiting to go out. Messages and `handled` notices (SPEC §10) are kept apart: a
// notice carries the id of the message it is about. No sockets; the client sends what takeFrames() returns.
import type { AckFrame } from '#events';
import { RecentIds } from './recent-ids';
import { ackFramesOf } from './wire';

/** A push the device acks: a message, or a `handled` notice (acked in the ack frame's `handled`). */
export type AckedPush = 'message' | 'handled';

export interface AckQueueOptions {
  /** How many acked ids of each kind are remembered for deduplication. */
  capacity: number;
  /** Ack each push as it arrives; off, only ack() acks. */
  autoAck: boolean;
  /** Called once for each burst of queued acks, in a microtask after the first. */
  flush(): void;
}

export class AckQueue {
  private readonly acked: Record<AckedPush, RecentIds>;
  private waiting: Record<AckedPush, string[]> = { message: [], handled: [] };
  private isFlushQueued = false;

  constructor(private readonly options: AckQueueOptions) {
    this.acked = { message: new RecentIds(options.capacity), handled: new RecentIds(options.capacity) };
  }

  /**
   * A push arrived. True when its id was acked before: a repeat means the edge never saw that ack, so it is
   * acked again, and the app must not see it twice. With autoAck, a new id is acked now.
   */
  received(kind: AckedPush, id: string): boolean {
    const isRepeat = this.acked[kind].has(id);
    if (isRepeat || this.options.autoAck) this.ack(kind, id);
    return isRepeat;
  }

  /** The app has handled these ids: remember them and queue their ack. */
  ack(kind: AckedPush, ids: string | readonly string[]): void {
    for (const id of typeof ids === 'string' ? [ids] : ids) {
      this.acked[kind].remember(id);
      this.waiting[kind].push(id);
    }
    this.flushSoon();
  }

  /** The ack frames for everything queued, which is then no longer queued. */
  takeFrames(): AckFrame[] {
    const { message, handled } = this.waiting;
    if (message.length === 0 && handled.length === 0) return [];
    this.waiting = { message: [], handled: [] };
    return ackFramesOf(message, handled);
  }

  // Acks from one burst of frames go out as one frame: ws delivers the frames of one read in the same tick,
  // so a microtask collects them.
  private flushSoon(): void {
    if (this.isFlushQueued) return;
    this.isFlushQueued = true;
    queueMicrotask(() => {
      this.isFlushQueued = false;
      this.options.flush();
    });
  }
}
