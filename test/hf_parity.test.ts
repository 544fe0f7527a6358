/**
 * Parity with Hugging Face transformers, data-driven: every sub-folder of test/fixtures/hf (or $HF_FIXTURES) is
 * one case, with nothing model-specific written here. Checks what each folder holds: logits, loss, every gradient,
 * the parameters after one AdamW step, greedy generation ids. Runs on every backend available (ref, and wasm once
 * it initialises), to the tolerances of the fixtures' README. The checks themselves are in ./hf_parity_suite.ts
 * (shared with WebGPU in Node, ./webgpu_node.test.ts).
 */
import { describeHfParity } from './hf_parity_suite.js';
import { testBackends } from './helpers.js';

const all = await testBackends();

for (const b of all) describeHfParity(b.name, b);
