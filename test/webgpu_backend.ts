// WebGPU backends for the Node test files: made through createWebGpuBackend, or null with the reason where Dawn
// finds no adapter (the tests then skip, saying why) — unless LLMTS_REQUIRE_WEBGPU=1, where a missing adapter is an
// error. Every backend made is disposed after the file's tests.
import { afterAll } from 'vitest';
import { createWebGpuBackend, type WebGpuBackend } from '../src/backend/webgpu/backend.js';

type Options = Readonly<Record<string, unknown>>;

const REQUIRE = process.env['LLMTS_REQUIRE_WEBGPU'] === '1';

export interface WebGpuMaker {
  /** A new backend with `opts`, or null (`why` set) where there is no adapter. */
  make(opts?: Options): Promise<WebGpuBackend | null>;
  /** Dispose `be` (a backend made otherwise) with the others after the file. */
  adopt(be: WebGpuBackend): void;
  /** Why the last `make` gave null ('' while none has). */
  readonly why: string;
}

/** A maker for one test file (`label` names it in the skip warning); its backends are disposed after the file. */
export function webgpuMaker(label: string): WebGpuMaker {
  const made: WebGpuBackend[] = [];
  afterAll(() => {
    for (const b of made) b.dispose();
  });
  const m = {
    why: '',
    adopt(be: WebGpuBackend): void {
      made.push(be);
    },
    async make(opts: Options = {}): Promise<WebGpuBackend | null> {
      try {
        const be = await createWebGpuBackend(opts);
        made.push(be);
        return be;
      } catch (e) {
        m.why = (e as Error).message;
        if (REQUIRE) throw new Error(`${m.why}, and LLMTS_REQUIRE_WEBGPU=1`);
        console.warn(`${label}: ${m.why}: skipped`);
        return null;
      }
    },
  };
  return m;
}
