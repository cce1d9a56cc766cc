// @ts-check
// The console's shell: is there a session, which view the address names (#/, #/shops/<id>, #/operations), and
// the poll that keeps the shown view current (every second, and at once after an action).
import { ApiError, call } from './api.js';
import { timeText } from './format.js';
import { operationsView } from './views/operations.js';
import { overviewView } from './views/overview.js';
import { shopView } from './views/shop.js';
import { signInView } from './views/sign-in.js';

export const POLL_MS = 1000;

/**
 * What every view gives the shell.
 * @typedef {object} View
 * @property {string} title
 * @property {HTMLElement} element
 * @property {() => Promise<void>} refresh  reads and shows the view's data; rejects with ApiError
 */

/**
 * What the shell gives every view.
 * @typedef {object} Shell
 * @property {() => void} refreshSoon  poll now (after an action) instead of at the next tick
 * @property {() => void} signedIn
 */

const main = /** @type {HTMLElement} */ (document.getElementById('main'));
const nav = /** @type {HTMLElement} */ (document.querySelector('.top-nav'));
const signOutButton = /** @type {HTMLButtonElement} */ (document.getElementById('sign-out'));
const freshness = /** @type {HTMLElement} */ (document.getElementById('freshness'));
const pollError = /** @type {HTMLElement} */ (document.getElementById('poll-error'));

/** Bumped on every view change; a poll loop of an older view stops. */
let generation = 0;
/** Wakes the poll loop early; replaced every sleep. */
let wake = () => {};
let isRefreshDue = false;

/** @type {Shell} */
const shell = {
  refreshSoon() {
    isRefreshDue = true;
    wake();
  },
  signedIn() {
    showView(true); // the sign-in form that had focus is gone: focus the new view's heading
  },
};

async function boot() {
  window.addEventListener('hashchange', () => showView(true));
  signOutButton.addEventListener('click', signOut);
  document.querySelector('[data-skip]')?.addEventListener('click', (event) => {
    event.preventDefault(); // the address holds the route, so the skip link moves focus without changing it
    main.focus();
  });
  try {
    await call('GET', '/session');
    showView(false);
  } catch (err) {
    if (err instanceof ApiError && err.isSignedOut) showSignIn();
    else showFailure(err);
  }
}

/** @param {boolean} isNavigation  a link was followed: move focus to the new view's heading */
function showView(isNavigation) {
  const route = routeOf(location.hash);
  const view =
    route.name === 'shop'
      ? shopView(route.shopId, shell)
      : route.name === 'operations'
        ? operationsView(shell)
        : overviewView(shell);
  setSignedIn(true);
  for (const link of nav.querySelectorAll('a')) {
    const isCurrent = link.dataset.nav === (route.name === 'operations' ? 'operations' : 'overview');
    if (isCurrent) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  mount(view);
  if (isNavigation) view.element.querySelector('h1')?.focus();
  void pollLoop(generation, view);
}

function showSignIn() {
  setSignedIn(false);
  mount(signInView(shell));
  freshness.textContent = 'Signed out';
}

/** @param {View} view */
function mount(view) {
  generation++;
  document.title = `${view.title} · Broker console`;
  main.replaceChildren(view.element);
  pollError.textContent = '';
}

/**
 * @param {number} mine
 * @param {View} view
 */
async function pollLoop(mine, view) {
  while (mine === generation) {
    isRefreshDue = false;
    try {
      await view.refresh();
      if (mine !== generation) return;
      freshness.textContent = `Updated ${timeText(new Date().toISOString())}`;
      pollError.textContent = '';
    } catch (err) {
      if (mine !== generation) return;
      if (err instanceof ApiError && err.isSignedOut) return showSignIn();
      pollError.textContent = `Not updating: ${err instanceof Error ? err.message : String(err)}`;
    }
    if (!isRefreshDue) await sleep(POLL_MS, mine);
  }
}

/**
 * @param {number} ms
 * @param {number} mine  only the current view's loop may be woken early
 */
function sleep(ms, mine) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    if (mine !== generation) return;
    wake = () => {
      clearTimeout(timer);
      resolve(undefined);
    };
  });
}

async function signOut() {
  try {
    await call('DELETE', '/session');
  } finally {
    showSignIn();
  }
}

/** @param {boolean} isSignedIn */
function setSignedIn(isSignedIn) {
  nav.hidden = !isSignedIn;
  signOutButton.hidden = !isSignedIn;
}

/** @param {unknown} err */
function showFailure(err) {
  main.replaceChildren();
  const message = document.createElement('p');
  message.setAttribute('role', 'alert');
  message.textContent = `The console could not start: ${err instanceof Error ? err.message : String(err)}`;
  main.append(message);
}

/**
 * @param {string} hash
 * @returns {{ name: 'overview' } | { name: 'operations' } | { name: 'shop', shopId: string }}
 */
export function routeOf(hash) {
  const shop = /^#\/shops\/([^/]+)$/.exec(hash);
  if (shop) {
    try {
      return { name: 'shop', shopId: decodeURIComponent(shop[1] ?? '') };
    } catch {
      return { name: 'overview' }; // a mangled address (a stray %) is not a shop
    }
  }
  if (hash === '#/operations') return { name: 'operations' };
  return { name: 'overview' };
}

void boot();
