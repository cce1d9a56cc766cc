// The /v1 routes the console uses, mounted under /console/api with the `/v1` dropped: the same route objects
// (the same input schemas, handlers and errors), authorised by the console session instead of a bearer key.
import express, { type Request, type Response, type Router } from 'express';
import { MAX_BODY_BYTES, type Route } from '../route';

export function mountRoutes(router: Router, routes: readonly Route[]): void {
  const parseJson = express.json({ limit: MAX_BODY_BYTES });
  for (const route of routes) {
    const { spec } = route;
    const steps = spec.body ? [parseJson] : [];
    router[spec.method](consolePathOf(spec.path), ...steps, async (req: Request, res: Response) => {
      const input = route.inputOf({
        params: req.params,
        query: req.query,
        body: req.body,
        header: (name) => req.get(name),
      });
      const reply = await spec.run(input);
      res.status(reply.status);
      if (reply.body === undefined) res.end();
      else res.json(reply.body);
    });
  }
}

/** `/v1/shops/:shopId/devices` → `/shops/:shopId/devices`. */
export function consolePathOf(v1Path: string): string {
  return v1Path.replace(/^\/v1(?=\/)/, '');
}
