/**
 * Backend registry: which backends exist, which one is the default. `initBackend('auto')` picks the fastest that
 * works here (wasm, else ref) and makes it the default that new tensors use.
 */
import type { Backend } from './backend.js';
import { RefBackend } from './ref/backend.js';
import { BackendError, ConfigError } from '../util/errors.js';

export type BackendName = 'ref' | 'wasm';

const live = new Map<string, Backend>();
let current: Backend | null = null;

/** A backend that is already initialised (or the current default when no name is given). */
export function getBackend(name?: BackendName): Backend {
  if (!name) {
    if (!current) current = ensureRef();
    return current;
  }
  if (name === 'ref') return ensureRef();
  const b = live.get(name);
  if (!b) throw new BackendError('E_BACKEND', `backend '${name}' is not initialised: await initBackend('${name}') first`);
  return b;
}

function ensureRef(): Backend {
  let r = live.get('ref');
  if (!r) {
    r = new RefBackend();
    live.set('ref', r);
  }
  return r;
}

export interface InitOptions {
  /** Worker threads for the wasm backend (default: the machine's cores). */
  threads?: number;
  /** Milliseconds an idle wasm worker spins for the next kernel before sleeping (default 2; WasmBackendOptions). */
  spinMs?: number;
  /** Make it the default for new tensors (default true). */
  setDefault?: boolean;
}

/** Initialise a backend ('auto': wasm where it works, else ref) and, by default, make it the default one. */
export async function initBackend(name: BackendName | 'auto' = 'auto', opts: InitOptions = {}): Promise<Backend> {
  let b: Backend;
  if (name === 'ref') b = ensureRef();
  else if (name === 'wasm' || name === 'auto') {
    const existing = live.get('wasm');
    if (existing) b = existing;
    else {
      try {
        const mod = await import('./wasm/backend.js');
        b = await mod.createWasmBackend({
          ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
          ...(opts.spinMs !== undefined ? { spinMs: opts.spinMs } : {}),
        });
        live.set('wasm', b);
      } catch (e) {
        if (name === 'wasm') throw e;
        b = ensureRef();
      }
    }
  } else throw new ConfigError('backend', `unknown backend '${String(name)}' (expected ref, wasm or auto)`);
  if (opts.setDefault !== false) current = b;
  return b;
}

/** Make an initialised backend the default for new tensors. */
export function setBackend(b: Backend): void {
  current = b;
}
