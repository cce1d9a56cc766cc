// The api tests' helpers live in test/support (api.ts: the api started in-process and its client). This re-export
// keeps the e2e test that still imports them from here working.
export { type Api, startTestApi } from '#test-support';
