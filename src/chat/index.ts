/** Chat: templates (ChatML, Jinja chat_template), conversations fitted to the context window, chat sessions. */
export * from './template.js';
export * from './conversation.js';
export * from './session.js';
