/**
 * Differentiable operations on tensors: the ops of ./ops_forward.ts with their gradient rules (./grad_rules.ts)
 * registered. The rules are built from the forward ops, so the two files meet here rather than importing each other
 * (no import cycle); everything outside src/tensor imports the ops from this file, which is what keeps every op's
 * rule registered before the op can run.
 */
import './grad_rules.js';
export * from './ops_forward.js';
