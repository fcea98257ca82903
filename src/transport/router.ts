import type { IncomingMessage, ServerResponse } from 'node:http';

export type RouteHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  params: Record<string, string>,
  url: URL,
) => unknown;

interface Route {
  methods: Set<string>;
  pattern: RegExp;
  keys: string[];
  handler: RouteHandler;
}

export type RouteMatch =
  | { kind: 'found'; handler: RouteHandler; params: Record<string, string> }
  | { kind: 'method_not_allowed'; allow: string[] }
  | { kind: 'none' };

/**
 * A small route table: exact paths with `:param` segments; a trailing slash is optional
 * (firmware and clients spell `/xiaozhi/ota/` both ways).
 */
export class Router {
  #routes: Route[] = [];

  add(methods: string | string[], path: string, handler: RouteHandler): this {
    const keys: string[] = [];
    const body = path
      .replace(/\/+$/, '')
      .split('/')
      .map((seg) => {
        if (seg.startsWith(':')) {
          keys.push(seg.slice(1));
          return '([^/]+)';
        }
        return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      })
      .join('/');
    this.#routes.push({
      methods: new Set((Array.isArray(methods) ? methods : [methods]).map((m) => m.toUpperCase())),
      pattern: new RegExp(`^${body}/?$`),
      keys,
      handler,
    });
    return this;
  }

  match(method: string, pathname: string): RouteMatch {
    const allow = new Set<string>();
    for (const r of this.#routes) {
      const m = r.pattern.exec(pathname);
      if (!m) continue;
      if (!r.methods.has(method) && !(method === 'HEAD' && r.methods.has('GET'))) {
        r.methods.forEach((x) => allow.add(x));
        continue;
      }
      const params: Record<string, string> = {};
      r.keys.forEach((k, i) => {
        params[k] = safeDecode(m[i + 1] ?? '');
      });
      return { kind: 'found', handler: r.handler, params };
    }
    return allow.size ? { kind: 'method_not_allowed', allow: [...allow] } : { kind: 'none' };
  }
}

function safeDecode(v: string): string {
  try {
    return decodeURIComponent(v);
  } catch {
    // Malformed percent-encoding: the raw segment is matched as it is, no route is lost by it.
    return v;
  }
}
