/**
 * OpenAI's Predicted Outputs on /v1/chat/completions: `prediction: { "type": "content", "content": <text or text
 * parts> }`, a text the reply is expected to repeat for the most part (a file to edit, a document to fix). It drafts
 * for speculative decoding (src/generate/speculative.ts PredictedText): the reply's last tokens are looked up in the
 * prediction and what follows them there is checked in one forward, so unchanged stretches come back several tokens
 * per step. The reply is the one the model gives without it (the same tokens for the same seed). usage reports
 * `completion_tokens_details.accepted_prediction_tokens` (drafted tokens the reply took) and
 * `rejected_prediction_tokens` (drafted tokens it turned down), as OpenAI does.
 */
import { PredictedText, type SpeculativeOptions } from '../generate/speculative.js';
import { badParam, type Body } from './openai_params.js';
import type { ServedModel } from './served_model.js';

/** The body field this reads. */
export const PREDICTION_FIELDS = ['prediction'];

/** The prediction's text: a string, or text parts ({ type: 'text', text }) joined. */
function predictionText(v: unknown): string {
  const bad = (why: string) => badParam('prediction', `Invalid 'prediction': ${why}`);
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw bad('expected an object { "type": "content", "content": … }');
  const o = v as { type?: unknown; content?: unknown };
  if (o.type !== 'content') throw bad(`expected type "content", got ${JSON.stringify(o.type)}`);
  if (typeof o.content === 'string') return o.content;
  if (!Array.isArray(o.content)) throw bad('content must be a string or an array of text parts');
  return o.content
    .map((p: unknown, i) => {
      const part = p as { type?: unknown; text?: unknown } | null;
      if (part?.type !== 'text' || typeof part.text !== 'string')
        throw badParam(
          `prediction.content[${i}]`,
          `Invalid 'prediction.content[${i}]': expected { "type": "text", "text": … }`,
        );
      return part.text;
    })
    .join('');
}

/** The request's drafter from its prediction, or null (none given, or an empty one). */
export function readPrediction(b: Body, served: ServedModel): SpeculativeOptions | null {
  const v = b.get('prediction');
  if (v === undefined) return null;
  const text = predictionText(v);
  if (text === '') return null;
  // the prediction is client text: marker text in it stays ordinary characters
  const ids = (served.codec.encodePlain ?? served.codec.encode).call(served.codec, text);
  return {
    drafter: new PredictedText(ids),
    ...(served.speculative?.maxDraft ? { maxDraft: served.speculative.maxDraft } : {}),
  };
}
