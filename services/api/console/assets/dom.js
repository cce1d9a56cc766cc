// @ts-check
// Building and updating the page. h() makes elements; patch() swaps a region's content when its data changed,
// keeping keyboard focus, open <details> and a text selection where they were, so that a poll every second does
// not move a keyboard user. Elements that must survive a patch carry a `data-key`.

/**
 * What h() takes as a child: text, a node, nothing, or a list of those (nested lists are flattened).
 * @typedef {string | number | Node | null | undefined | false | ChildList} Child
 */
/** @typedef {Child[]} ChildList */

/**
 * An element with attributes (`on<event>` functions become listeners, `true` a bare attribute, false/null none)
 * and children (strings become text, never HTML).
 * @param {string} tag
 * @param {Record<string, unknown>} [attrs]
 * @param {...Child} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      element.addEventListener(name.slice(2), /** @type {EventListener} */ (value));
    } else {
      element.setAttribute(name, value === true ? '' : String(value));
    }
  }
  appendChildren(element, children);
  return element;
}

/**
 * @param {Element} parent
 * @param {Child[]} children
 */
function appendChildren(parent, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) appendChildren(parent, child);
    else parent.append(typeof child === 'number' ? String(child) : child);
  }
}

/** @type {WeakMap<Element, string>} */
const shownData = new WeakMap();

/**
 * Replaces a region's content with build(), unless the region already shows this data or the user is selecting
 * text in it (the next poll tries again).
 * @param {HTMLElement} region
 * @param {unknown} data
 * @param {() => Child} build
 */
export function patch(region, data, build) {
  const signature = JSON.stringify(data);
  if (shownData.get(region) === signature) return;
  const selection = document.getSelection();
  if (selection && !selection.isCollapsed && region.contains(selection.anchorNode)) return;
  const active = document.activeElement;
  const focusedKey =
    active instanceof HTMLElement && region.contains(active) ? active.dataset.key : undefined;
  const openKeys = new Set(
    [...region.querySelectorAll('details[open][data-key]')].map(
      (d) => /** @type {HTMLElement} */ (d).dataset.key,
    ),
  );
  const fresh = h('div', {}, build());
  region.replaceChildren(...fresh.childNodes);
  shownData.set(region, signature);
  for (const details of region.querySelectorAll('details[data-key]')) {
    if (openKeys.has(/** @type {HTMLElement} */ (details).dataset.key)) details.setAttribute('open', '');
  }
  if (focusedKey !== undefined) byKey(region, focusedKey)?.focus();
}

/**
 * Shows why a region could not be read, keeping what it showed before greyed out.
 * @param {HTMLElement} region
 * @param {string} message
 */
export function showRegionError(region, message) {
  region.classList.add('is-stale');
  let note = region.previousElementSibling;
  if (!(note instanceof HTMLElement) || !note.classList.contains('region-error')) {
    note = h('p', { class: 'region-error', role: 'alert' });
    region.before(note);
  }
  note.textContent = message;
}

/** @param {HTMLElement} region */
export function clearRegionError(region) {
  region.classList.remove('is-stale');
  const note = region.previousElementSibling;
  if (note instanceof HTMLElement && note.classList.contains('region-error')) note.remove();
}

/**
 * @param {ParentNode} root
 * @param {string} key
 * @returns {HTMLElement | null}
 */
export function byKey(root, key) {
  return root.querySelector(`[data-key="${CSS.escape(key)}"]`);
}

/**
 * Says something to screen readers (the result of an action); the live region is polite.
 * @param {string} text
 */
export function announce(text) {
  const announcer = document.getElementById('announcer');
  if (announcer) announcer.textContent = text;
}

/**
 * @typedef {object} DialogSpec
 * @property {string} title
 * @property {Child} [body]
 * @property {string} confirmLabel
 * @property {boolean} [isDanger]
 * @property {(form: HTMLFormElement) => Promise<void>} onConfirm  throws to keep the dialog open with the reason
 */

/**
 * A modal dialog (the platform's: it traps focus and closes on Escape). On close, focus returns to the element
 * that opened it, found again by its data-key since a poll may have replaced it meanwhile.
 * @param {DialogSpec} spec
 */
export function openDialog(spec) {
  const dialog = /** @type {HTMLDialogElement} */ (document.getElementById('dialog'));
  const opener =
    document.activeElement instanceof HTMLElement ? document.activeElement.dataset.key : undefined;
  const error = h('p', { class: 'dialog-error', role: 'alert' });
  const confirm = h(
    'button',
    { type: 'submit', class: spec.isDanger ? 'danger' : 'primary' },
    spec.confirmLabel,
  );
  // A destructive question starts on Cancel, so that Enter does not revoke anything by accident.
  const cancel = h(
    'button',
    { type: 'button', class: 'quiet', autofocus: spec.isDanger, onclick: () => dialog.close() },
    'Cancel',
  );
  const form = /** @type {HTMLFormElement} */ (
    h(
      'form',
      {
        onsubmit: async (/** @type {SubmitEvent} */ event) => {
          event.preventDefault();
          confirm.setAttribute('disabled', '');
          error.textContent = '';
          try {
            await spec.onConfirm(form);
            dialog.close();
          } catch (err) {
            error.textContent = err instanceof Error ? err.message : String(err);
          } finally {
            confirm.removeAttribute('disabled');
          }
        },
      },
      h('h2', { id: 'dialog-title' }, spec.title),
      spec.body,
      error,
      h('div', { class: 'dialog-actions' }, confirm, cancel),
    )
  );
  dialog.replaceChildren(form);
  dialog.addEventListener(
    'close',
    () => {
      if (opener !== undefined) byKey(document, opener)?.focus();
    },
    { once: true },
  );
  dialog.showModal();
  const first = form.querySelector('input, select, textarea');
  if (first instanceof HTMLElement) first.focus();
}
