// The /v1 routes the console uses, mounted under /console/api with the `/v1` dropped: the same route objects
// (the same input schemas, handlers and errors), authorised by the console session instead of a bearer key.
import express, { type Router } from 'express';
import { handlerOf, MAX_BODY_BYTES, type Route } from '../route';

export function mountRoutes(router: Router, routes: readonly Route[]): void {
  const parseJson = express.json({ limit: MAX_BODY_BYTES });
  for (const route of routes) {
    const { spec } = route;
    const steps = spec.body ? [parseJson] : [];
    router[spec.method](consolePathOf(spec.path), ...steps, handlerOf(route));
  }
}

/** `/v1/shops/:shopId/devices` → `/shops/:shopId/devices`. */
export function consolePathOf(v1Path: string): string {
  return v1Path.replace(/^\/v1(?=\/)/, '');
}
