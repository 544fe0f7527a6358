// The browser test's checks (checks.js) in a module Web Worker: parameters in the first message, findings (or the
// error) in the answer.
import { runChecks } from './checks.js';

self.addEventListener(
  'message',
  (e) => {
    runChecks(e.data)
      .catch((err) => ({ error: String(err?.stack ? err.stack : err) }))
      .then((out) => self.postMessage(out));
  },
  { once: true },
);
