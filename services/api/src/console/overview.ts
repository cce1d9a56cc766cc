// The console's shops overview: each shop with its devices, how many of its mains are online, and its pending
// messages with the age of the oldest. Shops are those in Redis's shop set (registered) joined with those the
// projection knows, so a shop shows up whichever side is behind.
import { Type } from '@sinclair/typebox';
import { type ApiContext, liveEdges, readRedis } from '../context';
import { defineRoute, type Route } from '../route';
import { selectShopCounts, selectShopIds } from './queries';

/** Shops shown at once; a search narrows the list (the overview is polled every second). */
export const OVERVIEW_SHOPS = 100;

export interface ShopSummary {
  shop_id: string;
  mains: number;
  subs: number;
  revoked: number;
  mains_online: number;
  pending: number;
  oldest_pending_at: string | null;
  oldest_pending_age_ms: number | null;
}

export interface Overview {
  shops: ShopSummary[];
  /** More shops match than are shown. */
  has_more: boolean;
  at: string;
}

const OverviewQuery = Type.Object({ q: Type.Optional(Type.String({ maxLength: 64 })) });

export function overviewRoute(ctx: ApiContext): Route {
  return defineRoute({
    method: 'get',
    path: '/overview',
    name: 'consoleOverview',
    summary: 'Shops whose id contains `q`, with devices, mains online and pending messages.',
    query: OverviewQuery,
    success: { status: 200, description: 'the shops' },
    errors: ['LOG_UNAVAILABLE', 'DATABASE_UNAVAILABLE'],
    example: { query: { q: 'shop' } },
    async run({ query }) {
      return { status: 200, body: await overviewOf(ctx, query.q ?? '') };
    },
  });
}

export async function overviewOf(ctx: ApiContext, search: string): Promise<Overview> {
  const needle = search.toLowerCase();
  const [registered, projected, edges] = await Promise.all([
    readRedis(ctx.redis.smembers(ctx.keys.shops())),
    selectShopIds(ctx.pool, search, OVERVIEW_SHOPS + 1),
    liveEdges(ctx),
  ]);
  const matching = new Set(projected);
  for (const shopId of registered) if (shopId.toLowerCase().includes(needle)) matching.add(shopId);
  const all = [...matching].sort();
  const shown = all.slice(0, OVERVIEW_SHOPS);
  const [counts, online] = await Promise.all([
    selectShopCounts(ctx.pool, shown),
    Promise.all(shown.map((shopId) => readRedis(ctx.presence.online(shopId, edges)))),
  ]);
  const nowMs = ctx.nowMs();
  const shops = shown.map((shopId, i): ShopSummary => {
    const count = counts.get(shopId)!;
    const oldest = count.oldest_pending_at;
    return {
      shop_id: shopId,
      mains: count.mains,
      subs: count.subs,
      revoked: count.revoked,
      mains_online: [...online[i]!.values()].filter((presence) => presence.type === 'main').length,
      pending: count.pending,
      oldest_pending_at: oldest?.toISOString() ?? null,
      oldest_pending_age_ms: oldest === null ? null : Math.max(0, nowMs - oldest.getTime()),
    };
  });
  return { shops, has_more: all.length > OVERVIEW_SHOPS, at: new Date(nowMs).toISOString() };
}
