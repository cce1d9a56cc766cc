// @ts-check
// Shops overview: each shop with its devices, mains online, pending messages and the age of the oldest one;
// searchable by shop id. Shops with pending messages and no main online are marked: nobody is receiving them.
import { call, seg } from '../api.js';
import { clearRegionError, h, patch, showRegionError } from '../dom.js';
import { ageText } from '../format.js';

/**
 * @typedef {{ shop_id: string, mains: number, subs: number, revoked: number, mains_online: number,
 *   pending: number, oldest_pending_at: string | null, oldest_pending_age_ms: number | null }} ShopSummary
 */

/** The search survives going into a shop and back. */
let search = '';

/**
 * @param {import('../main.js').Shell} shell
 * @returns {import('../main.js').View}
 */
export function overviewView(shell) {
  const region = h('div', { class: 'region', id: 'shops' });
  const input = /** @type {HTMLInputElement} */ (
    h('input', { id: 'shop-search', type: 'search', value: search, autocomplete: 'off', spellcheck: 'false' })
  );
  let debounce = 0;
  input.addEventListener('input', () => {
    clearTimeout(debounce);
    debounce = window.setTimeout(() => {
      search = input.value.trim();
      shell.refreshSoon();
    }, 200);
  });
  const element = h(
    'div',
    {},
    h('h1', { tabindex: '-1' }, 'Shops'),
    h(
      'form',
      { role: 'search', class: 'inline-form', onsubmit: (/** @type {Event} */ e) => e.preventDefault() },
      h('label', { for: 'shop-search' }, 'Search by shop id'),
      input,
    ),
    region,
  );

  return {
    title: 'Shops',
    element,
    async refresh() {
      const query = search === '' ? '' : `?q=${encodeURIComponent(search)}`;
      try {
        /** @type {{ shops: ShopSummary[], has_more: boolean }} */
        const overview = await call('GET', `/overview${query}`);
        clearRegionError(region);
        patch(region, overview, () => shopsTable(overview.shops, overview.has_more));
      } catch (err) {
        showRegionError(region, `Shops could not be read: ${/** @type {Error} */ (err).message}`);
        throw err;
      }
    },
  };
}

/**
 * @param {ShopSummary[]} shops
 * @param {boolean} hasMore
 */
function shopsTable(shops, hasMore) {
  if (shops.length === 0)
    return h('p', { class: 'empty' }, search ? `No shop id contains “${search}”.` : 'No shops yet.');
  return [
    h(
      'table',
      { class: 'data' },
      h('caption', { class: 'visually-hidden' }, 'Shops'),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', { scope: 'col' }, 'Shop'),
          h('th', { scope: 'col' }, 'Devices'),
          h('th', { scope: 'col', class: 'num' }, 'Mains online'),
          h('th', { scope: 'col', class: 'num' }, 'Pending'),
          h('th', { scope: 'col' }, 'Oldest pending'),
        ),
      ),
      h('tbody', {}, shops.map(shopRow)),
    ),
    hasMore ? h('p', { class: 'hint' }, 'More shops match: narrow the search.') : null,
  ];
}

/** @param {ShopSummary} shop */
function shopRow(shop) {
  const isUnattended = shop.pending > 0 && shop.mains_online === 0;
  return h(
    'tr',
    { 'data-shop-id': shop.shop_id, class: isUnattended ? 'is-warning' : undefined },
    h(
      'th',
      { scope: 'row' },
      h('a', { href: `#/shops/${seg(shop.shop_id)}`, 'data-key': `shop:${shop.shop_id}` }, shop.shop_id),
    ),
    h(
      'td',
      {},
      `${shop.mains} main${shop.mains === 1 ? '' : 's'}, ${shop.subs} sub${shop.subs === 1 ? '' : 's'}`,
      shop.revoked > 0 ? h('span', { class: 'muted' }, ` (${shop.revoked} revoked)`) : null,
    ),
    h('td', { class: 'num', 'data-field': 'mains-online' }, `${shop.mains_online} / ${shop.mains}`),
    h('td', { class: 'num', 'data-field': 'pending' }, shop.pending),
    h(
      'td',
      { 'data-field': 'oldest-pending' },
      shop.oldest_pending_age_ms === null
        ? h('span', { class: 'muted' }, '—')
        : h('time', { datetime: shop.oldest_pending_at }, `${ageText(shop.oldest_pending_age_ms)} ago`),
      isUnattended ? h('span', { class: 'badge warning' }, 'no main online') : null,
    ),
  );
}
