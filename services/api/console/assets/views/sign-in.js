// @ts-check
// Signing in: the API key is sent once and exchanged for a session cookie; the field is emptied before the
// request, so the key stays neither in the page nor in its storage.
import { ApiError, call } from '../api.js';
import { h } from '../dom.js';

/**
 * @param {import('../main.js').Shell} shell
 * @returns {import('../main.js').View}
 */
export function signInView(shell) {
  const keyInput = /** @type {HTMLInputElement} */ (
    h('input', {
      id: 'api-key',
      name: 'api-key',
      type: 'password',
      autocomplete: 'off',
      spellcheck: 'false',
      required: true,
      autofocus: true,
      'aria-describedby': 'sign-in-hint',
    })
  );
  const error = h('p', { class: 'form-error', role: 'alert', id: 'sign-in-error' });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h(
    'form',
    { class: 'sign-in', onsubmit: onSubmit },
    h('label', { for: 'api-key' }, 'API key'),
    keyInput,
    h(
      'p',
      { class: 'hint', id: 'sign-in-hint' },
      'One of the keys in API_KEYS. The console keeps a session, not the key.',
    ),
    error,
    submit,
  );

  /** @param {SubmitEvent} event */
  async function onSubmit(event) {
    event.preventDefault();
    const key = keyInput.value;
    keyInput.value = '';
    error.textContent = '';
    submit.setAttribute('disabled', '');
    try {
      await call('POST', '/session', { key });
      shell.signedIn();
    } catch (err) {
      error.textContent =
        err instanceof ApiError && err.isSignedOut
          ? 'That key was refused.'
          : `Could not sign in: ${err instanceof Error ? err.message : String(err)}`;
      keyInput.focus();
    } finally {
      submit.removeAttribute('disabled');
    }
  }

  const element = h('section', { class: 'narrow' }, h('h1', { tabindex: '-1' }, 'Sign in'), form);
  queueMicrotask(() => keyInput.focus());
  return { title: 'Sign in', element, refresh: async () => {} };
}
