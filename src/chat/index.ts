/**
 * Chat: templates (ChatML, Jinja chat_template), conversations fitted to the context window, chat sessions, and the
 * codec that joins a tokenizer to the generation engine's token ids.
 */
export * from './template.js';
export * from './conversation.js';
export * from './session.js';
export * from './codec.js';
