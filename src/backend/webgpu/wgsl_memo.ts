/**
 * WGSL built once per key: a kernel file whose shader text depends on a few settings (a dtype, a flag, an operator)
 * names them in `key` and gets the same string object on every call. The pipeline cache (./core.ts) is keyed by the
 * WGSL text, and a Map lookup with the very string it holds compares by identity, where a freshly built one of a few
 * KB is hashed and compared character by character, on every dispatch. `key` must determine the text completely.
 */
const made = new Map<string, string>();

/** The WGSL of `key`, from `build` the first time. */
export function wgsl(key: string, build: () => string): string {
  let code = made.get(key);
  if (code === undefined) made.set(key, (code = build()));
  return code;
}
