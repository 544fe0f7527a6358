/**
 * The web page's files (./app/: page.ts, chat_js.ts, feedback_js.ts, compare_js.ts, improve_js.ts): `GET /` and `/app/*`, with a Content-Security-Policy that allows scripts and
 * styles from this origin only and no framing, so the page runs no script but its own. Public even with --api-key
 * (the page asks for the key and sends it with each API call).
 */
import { CHAT_JS } from './app/chat_js.js';
import { COMPARE_JS } from './app/compare_js.js';
import { FEEDBACK_JS } from './app/feedback_js.js';
import { IMPROVE_JS } from './app/improve_js.js';
import { THINKING_JS } from './app/thinking_js.js';
import { CHAT_CSS, ICON_SVG, INDEX_HTML } from './app/page.js';
import type { Route } from './routes.js';

const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const FILES: Record<string, { type: string; body: string }> = {
  '/': { type: 'text/html; charset=utf-8', body: INDEX_HTML },
  '/app/chat.js': { type: 'text/javascript; charset=utf-8', body: CHAT_JS },
  '/app/feedback.js': { type: 'text/javascript; charset=utf-8', body: FEEDBACK_JS },
  '/app/compare.js': { type: 'text/javascript; charset=utf-8', body: COMPARE_JS },
  '/app/improve.js': { type: 'text/javascript; charset=utf-8', body: IMPROVE_JS },
  '/app/thinking.js': { type: 'text/javascript; charset=utf-8', body: THINKING_JS },
  '/app/icon.svg': { type: 'image/svg+xml', body: ICON_SVG },
  '/app/chat.css': { type: 'text/css; charset=utf-8', body: CHAT_CSS },
};

/** Paths of the page's files (public: no API key needed). */
export function isPagePath(path: string): boolean {
  return path === '/' || path.startsWith('/app/');
}

/** Serves the page. */
export function pageRoute(): Route {
  return async (ctx) => {
    const f = FILES[ctx.url.pathname];
    if (!f || (ctx.method !== 'GET' && ctx.method !== 'HEAD')) return false;
    ctx.res.writeHead(200, {
      'Content-Type': f.type,
      'Content-Length': Buffer.byteLength(f.body),
      'Content-Security-Policy': CSP,
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
      'Cache-Control': 'no-cache',
    });
    ctx.res.end(ctx.method === 'HEAD' ? undefined : f.body);
    return true;
  };
}
