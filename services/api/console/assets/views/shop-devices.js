// @ts-check
// A shop's devices: type, online, which edge holds the socket, last seen; registering one (its token is shown
// once, to copy into the device) and revoking one (its tokens stop working and its socket is closed).
import { call, seg } from '../api.js';
import { announce, clearRegionError, h, openDialog, patch, showRegionError } from '../dom.js';
import { timeText } from '../format.js';

/**
 * @param {string} shopId
 * @param {import('../main.js').Shell} shell
 */
export function devicesSection(shopId, shell) {
  const region = h('div', { class: 'region', id: 'devices' });
  const tokenPanel = h('div', { id: 'token-panel' });
  const element = h(
    'section',
    { 'aria-labelledby': 'devices-title' },
    h('h2', { id: 'devices-title' }, 'Devices'),
    region,
    registerForm(shopId, shell, tokenPanel),
    tokenPanel,
  );

  async function refresh() {
    try {
      /** @type {[import('../api.js').Page<import('../api.js').Device>, import('../api.js').Page<import('../api.js').Connection>]} */
      const [devices, connections] = await Promise.all([
        call('GET', `/shops/${seg(shopId)}/devices?limit=500`),
        call('GET', `/connections?shop_id=${seg(shopId)}&limit=500`),
      ]);
      const edgeOf = new Map(connections.items.map((c) => [c.client_id, c.edge_id]));
      const rows = devices.items.map((device) => ({
        ...device,
        edge_id: edgeOf.get(device.client_id) ?? null,
      }));
      clearRegionError(region);
      patch(region, { rows, more: devices.next_cursor !== null }, () =>
        devicesTable(shopId, rows, devices.next_cursor !== null, shell),
      );
    } catch (err) {
      showRegionError(region, `Devices could not be read: ${/** @type {Error} */ (err).message}`);
      throw err;
    }
  }

  return { element, refresh };
}

/**
 * @param {string} shopId
 * @param {Array<import('../api.js').Device & { edge_id: string | null }>} rows
 * @param {boolean} hasMore
 * @param {import('../main.js').Shell} shell
 */
function devicesTable(shopId, rows, hasMore, shell) {
  if (rows.length === 0) return h('p', { class: 'empty' }, 'No devices registered.');
  return [
    h(
      'table',
      { class: 'data' },
      h('caption', { class: 'visually-hidden' }, 'Devices of the shop'),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['Device', 'Type', 'State', 'Edge', 'Last seen'].map((name) => h('th', { scope: 'col' }, name)),
          h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')),
        ),
      ),
      h(
        'tbody',
        {},
        rows.map((device) => {
          const state = device.revoked ? 'revoked' : device.online ? 'online' : 'offline';
          return h(
            'tr',
            { 'data-client-id': device.client_id },
            h('th', { scope: 'row', class: 'mono' }, device.client_id),
            h('td', {}, device.legacy ? `${device.type} (legacy)` : device.type),
            h('td', {}, h('span', { class: `state state-${state}`, 'data-field': 'state' }, state)),
            h('td', { class: 'mono wrap' }, device.edge_id ?? h('span', { class: 'muted' }, '—')),
            h(
              'td',
              {},
              device.last_seen_at === null
                ? h('span', { class: 'muted' }, 'never')
                : h('time', { datetime: device.last_seen_at }, timeText(device.last_seen_at)),
            ),
            h(
              'td',
              { class: 'actions' },
              device.revoked
                ? null
                : h(
                    'button',
                    {
                      type: 'button',
                      class: 'danger small',
                      'data-key': `revoke:${device.client_id}`,
                      'aria-label': `Revoke ${device.client_id}`,
                      onclick: () => confirmRevoke(shopId, device.client_id, shell),
                    },
                    'Revoke',
                  ),
            ),
          );
        }),
      ),
    ),
    hasMore ? h('p', { class: 'hint' }, 'The first 500 devices are shown.') : null,
  ];
}

/**
 * @param {string} shopId
 * @param {string} clientId
 * @param {import('../main.js').Shell} shell
 */
function confirmRevoke(shopId, clientId, shell) {
  openDialog({
    title: `Revoke ${clientId}?`,
    body: h(
      'p',
      {},
      'Its tokens stop working at once and its live connection is closed. It can be registered again later, with a new token.',
    ),
    confirmLabel: 'Revoke',
    isDanger: true,
    async onConfirm() {
      await call('DELETE', `/shops/${seg(shopId)}/devices/${seg(clientId)}`);
      announce(`${clientId} revoked`);
      shell.refreshSoon();
    },
  });
}

/**
 * @param {string} shopId
 * @param {import('../main.js').Shell} shell
 * @param {HTMLElement} tokenPanel
 */
function registerForm(shopId, shell, tokenPanel) {
  const clientInput = /** @type {HTMLInputElement} */ (
    h('input', {
      id: 'register-client-id',
      required: true,
      maxlength: '64',
      pattern: '[A-Za-z0-9_.:\\-]{1,64}',
      title: '1 to 64 of A–Z a–z 0–9 _ . : -',
      autocomplete: 'off',
      spellcheck: 'false',
    })
  );
  const typeSelect = /** @type {HTMLSelectElement} */ (
    h(
      'select',
      { id: 'register-type' },
      h('option', { value: 'main' }, 'main (cashier POS)'),
      h('option', { value: 'sub' }, 'sub (handheld, tablet)'),
    )
  );
  // SPEC §9: a device of the original system may also log in over its own protocol.
  const legacyBox = /** @type {HTMLInputElement} */ (h('input', { id: 'register-legacy', type: 'checkbox' }));
  const error = h('p', { class: 'form-error', role: 'alert' });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Register');
  return h(
    'form',
    {
      class: 'inline-form register',
      'aria-labelledby': 'register-title',
      onsubmit: async (/** @type {SubmitEvent} */ event) => {
        event.preventDefault();
        error.textContent = '';
        submit.setAttribute('disabled', '');
        const clientId = clientInput.value.trim();
        try {
          /** @type {{ token: string }} */
          const registered = await call('POST', `/shops/${seg(shopId)}/devices`, {
            client_id: clientId,
            type: typeSelect.value,
            ...(legacyBox.checked ? { legacy: true } : {}),
          });
          clientInput.value = '';
          showToken(tokenPanel, clientId, registered.token);
          announce(`${clientId} registered; its token is shown once`);
          shell.refreshSoon();
        } catch (err) {
          error.textContent = `Not registered: ${/** @type {Error} */ (err).message}`;
        } finally {
          submit.removeAttribute('disabled');
        }
      },
    },
    h('h3', { id: 'register-title' }, 'Register a device'),
    h('div', { class: 'field' }, h('label', { for: 'register-client-id' }, 'Client id'), clientInput),
    h('div', { class: 'field' }, h('label', { for: 'register-type' }, 'Type'), typeSelect),
    h(
      'div',
      { class: 'field' },
      h('label', { for: 'register-legacy' }, 'Original protocol (legacy)'),
      legacyBox,
    ),
    submit,
    error,
  );
}

/**
 * The new token, once: it is not stored anywhere by the console, and Done removes it from the page.
 * @param {HTMLElement} panel
 * @param {string} clientId
 * @param {string} token
 */
function showToken(panel, clientId, token) {
  const field = /** @type {HTMLTextAreaElement} */ (
    h('textarea', { id: 'new-token', readonly: true, rows: '3', class: 'mono', spellcheck: 'false' })
  );
  field.value = token;
  const copied = h('span', { class: 'hint', role: 'status' });
  const copy = h(
    'button',
    {
      type: 'button',
      onclick: async () => {
        field.select();
        try {
          await navigator.clipboard.writeText(token);
          copied.textContent = 'Copied.';
        } catch {
          // No clipboard permission (or not a secure context): the text is selected for Ctrl+C instead.
          copied.textContent = 'Selected: press Ctrl+C (⌘C) to copy.';
        }
      },
    },
    'Copy token',
  );
  const done = h(
    'button',
    { type: 'button', class: 'quiet', onclick: () => panel.replaceChildren() },
    'Done',
  );
  panel.replaceChildren(
    h(
      'div',
      { class: 'token-box', role: 'region', 'aria-labelledby': 'token-title' },
      h('h3', { id: 'token-title' }, `Token for ${clientId}`),
      h(
        'p',
        {},
        'Shown once: copy it into the device now. It cannot be read again: a lost token means revoking the device and registering it again.',
      ),
      h('label', { for: 'new-token', class: 'visually-hidden' }, `Token for ${clientId}`),
      field,
      h('div', { class: 'row' }, copy, done, copied),
    ),
  );
  copy.focus();
}
