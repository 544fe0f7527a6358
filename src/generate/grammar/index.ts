/** Constrained decoding: grammars over bytes, their recognizer, vocabulary masks, and the JSON Schema front end. */
export * from './grammar.js';
export * from './matcher.js';
export * from './token_mask.js';
export * from './constraint.js';
export * from './json_schema.js';
export * from './gbnf.js';
export * from './utf8_ranges.js';
export * from './regex.js';
export * from './int_range.js';
