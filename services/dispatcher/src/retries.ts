// Re-pushes of pushes that could not reach a socket (SPEC §3): published to an edge nobody listened on, or bounced
// by an edge that no longer held the connection. Scheduled in BullMQ, one job per dispatch (not per message).
// When a job fires, messages acked meanwhile are skipped by the push script; offline recipients wait for their
// next login; the rest are pushed again, and those that again reach no edge are scheduled once more with a longer
// delay, until their attempt limit: then DeliveryFailed is appended and the message stays pending (SPEC §5.3).
import { Queue, Worker } from 'bullmq';
import type { Bounce, Inbox } from '#eventlog';
import type { Keys } from '#events';
import { type Config, counter, type Logger, type RedisClient } from '#runtime';
import { send } from './deliver';
import type { Push, Step } from './routing';

export interface RetryItem {
  shop: string;
  client: string;
  id: string;
  /** Push while the message's attempt count is below this. */
  limit: number;
}

export interface RetryJob {
  round: number;
  items: RetryItem[];
}

const QUEUE = 'redeliveries';
/** Items per job: a job's data stays well under a few hundred KiB. */
const ITEMS_PER_JOB = 500;
const retried = counter(
  'broker_dispatcher_repushes_total',
  'Re-pushes of messages whose earlier push reached no socket',
);

/** SPEC §3: the first retry after DELIVERY_RETRY_FIRST_MS, then doubling, with ±20 % jitter, capped. */
export function retryDelayMs(
  round: number,
  firstMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const base = Math.min(maxMs, firstMs * 2 ** (round - 1));
  return Math.round(base * (0.8 + 0.4 * random()));
}

export interface RetryDeps {
  redis: RedisClient;
  keys: Keys;
  inbox: Inbox;
  delivery: Config['delivery'];
  log: Logger;
  now(): number;
  /** Appends DeliveryFailed for a message that used up its attempts. */
  recordFailure(push: Push, attempts: number): Promise<void>;
}

export class Retries {
  private readonly queue: Queue<RetryJob>;
  private worker: Worker<RetryJob> | undefined;

  constructor(
    private readonly deps: RetryDeps,
    connection: RedisClient,
  ) {
    this.queue = new Queue<RetryJob>(QUEUE, { connection, prefix: deps.keys.bullPrefix() });
    this.queue.on('error', (err) => deps.log.warn({ reason: err.message }, 'retry queue error'));
  }

  /** Starts working on due retry jobs (any dispatcher's: a dead dispatcher's jobs are picked up here). */
  startWorker(connection: RedisClient): void {
    this.worker = new Worker<RetryJob>(QUEUE, (job) => this.redeliver(job.data), {
      connection,
      prefix: this.deps.keys.bullPrefix(),
      concurrency: 4,
    });
    this.worker.on('error', (err) => this.deps.log.warn({ reason: err.message }, 'retry worker error'));
    this.worker.on('failed', (job, err) =>
      this.deps.log.warn({ job_id: job?.id, reason: err.message }, 'retry job failed; BullMQ retries it'),
    );
  }

  /**
   * Schedules the next check of pushed messages; resolves once it is stored in Redis (the caller acknowledges
   * its batch only then, so a dispatcher that dies in between leaves the batch to be dispatched again).
   */
  async schedule(round: number, items: RetryItem[]): Promise<void> {
    if (items.length === 0) return;
    const { firstRetryMs, maxRetryMs } = this.deps.delivery;
    const jobs = [];
    for (let at = 0; at < items.length; at += ITEMS_PER_JOB) {
      jobs.push({
        name: 'redeliver',
        data: { round, items: items.slice(at, at + ITEMS_PER_JOB) },
        opts: {
          delay: retryDelayMs(round, firstRetryMs, maxRetryMs),
          attempts: 20,
          backoff: { type: 'exponential' as const, delay: 500 },
          removeOnComplete: true,
          removeOnFail: 1000,
        },
      });
    }
    if (jobs.length === 1) await this.queue.add(jobs[0]!.name, jobs[0]!.data, jobs[0]!.opts);
    else await this.queue.addBulk(jobs);
  }

  /** Schedules the retry of pushes an edge bounced; the budget counts from the bounced attempt. */
  async scheduleBounces(bounces: readonly Bounce[]): Promise<void> {
    await this.schedule(
      1,
      bounces.map((bounce) => ({
        shop: bounce.shop,
        client: bounce.id.slice(bounce.id.indexOf('.') + 1),
        id: bounce.id,
        limit: bounce.attempt + this.deps.delivery.attempts - 1,
      })),
    );
  }

  /** Jobs waiting or delayed: the retry queue depth. */
  async depth(): Promise<number> {
    const counts = await this.queue.getJobCounts('delayed', 'waiting', 'active');
    return (counts.delayed ?? 0) + (counts.waiting ?? 0) + (counts.active ?? 0);
  }

  private async redeliver(job: RetryJob): Promise<void> {
    const { redis, keys, inbox, log } = this.deps;
    const byShop = new Map<string, RetryItem[]>();
    for (const item of job.items) byShop.set(item.shop, [...(byShop.get(item.shop) ?? []), item]);
    const shops = [...byShop.keys()];
    const pending = await Promise.all(
      shops.map((shop) =>
        inbox.pending(
          shop,
          byShop.get(shop)!.map((item) => item.id),
        ),
      ),
    );
    const steps: Step[] = [];
    shops.forEach((shop, i) => {
      for (const item of byShop.get(shop)!) {
        const found = pending[i]!.get(item.id);
        // Acked: done. Offline (no connection when it is counted): its next login pushes it, with a fresh budget.
        if (found)
          steps.push({ kind: 'push', push: { item: found, shop, client: item.client, limit: item.limit } });
      }
    });
    const outcome = await send(redis, keys, inbox, steps);
    retried.inc(outcome.pushed.length);
    for (const failed of outcome.exhausted) await this.deps.recordFailure(failed, failed.attempts);
    await this.schedule(
      job.round + 1,
      outcome.unreached.map((p) => ({ shop: p.shop, client: p.client, id: p.item.id, limit: p.limit })),
    );
    if (outcome.exhausted.length > 0)
      log.info({ count: outcome.exhausted.length }, 'deliveries failed after their budget');
  }

  async close(): Promise<void> {
    await this.worker?.close();
    await this.queue.close();
  }
}
