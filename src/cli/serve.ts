/**
 * `llmts serve <model-dir|run-dir>`: serve a model over HTTP with OpenAI's API (src/server/), and a chat page at /.
 *
 *   llmts serve runs/my-run --port 8080
 *   curl http://127.0.0.1:8080/v1/chat/completions -H 'Content-Type: application/json' \
 *        -d '{"model": "my-run", "messages": [{"role": "user", "content": "Hi"}], "stream": true}'
 *
 * Read top to bottom: parse, load (the folder, or a run folder's checkpoint/), open the feedback store, build the
 * server, listen, print the URL, wait for Ctrl-C (or SIGTERM), close cleanly. Requests generate one at a time through
 * a queue.
 *
 * The feedback store (src/feedback/, SQLite): `--db FILE`, by default `feedback.sqlite` in the model folder, `--no-db`
 * for none. With it the server mounts the feedback API at /api (src/server/feedback_api.ts) and records each chat
 * completion that names its stored user message (`"llmts": {"parent_id"}`, src/server/reply_link.ts) — what the chat
 * page at / does; `llmts feedback export --db FILE` turns the judgments into training rows, and the page's "Improve
 * the model" trains on them in the background (src/server/improve_job.ts, runs under --runs-dir). `--compare DIR`
 * keeps a second checkpoint for the page's blind Compare view (src/server/compare_route.ts).
 */
import { Command, Option } from 'commander';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { getBackend, BACKEND_CHOICES } from '../backend/registry.js';
import { chatmlTemplate, IM_START, loadChatTemplate, transcriptTemplate } from '../chat/template.js';
import { type QuantizeFlag, quantizeOption } from './quantize_flag.js';
import { describeWeights } from '../model/quantize.js';
import type { ServedModel } from '../server/served_model.js';
import { FeedbackStore } from '../feedback/store.js';
import { feedbackRoute, replyRecorder } from '../server/feedback_api.js';
import { compareRoute } from '../server/compare_route.js';
import { ImproveJob, improveRoute } from '../server/improve_job.js';
import { replyLinker } from '../server/reply_link.js';
import { createServer } from '../server/server.js';
import { switchServedModel } from '../server/switch_model.js';
import { ConfigError } from '../util/errors.js';
import { loadForGeneration, loadSpeculative, numberFlag, parseOrExit } from './generate.js';
import { addSpeculativeFlags, checkSpeculativeFlags, DRAFT_P_MIN, type SpeculativeFlags } from './speculative_flags.js';
import { DEFAULT_MAX_DRAFT } from '../generate/speculative.js';
import { leadingBos, trailingEos } from '../tokenizer/leading_bos.js';
import { readPooling } from '../model/hf/pooling.js';

interface ServeFlags extends SpeculativeFlags {
  host: string;
  port: number;
  apiKey?: string;
  modelName?: string;
  maxQueue: number;
  parallel: number;
  prefillChunk?: number;
  maxTokens: number;
  maxWait: number;
  timeout: number;
  reasoningFormat: 'none' | 'deepseek';
  cacheSlots: number;
  backend: (typeof BACKEND_CHOICES)[number];
  threads?: number;
  quantize?: QuantizeFlag;
  quiet?: boolean;
  /** The feedback store's file; false: --no-db. */
  db?: string | false;
  /** A second checkpoint for the page's blind Compare view. */
  compare?: string;
  runsDir: string;
}

/** The model folder of a path: itself, or a run folder's checkpoint/. */
export function modelFolderOf(dir: string): string {
  if (fs.existsSync(path.join(dir, 'config.json'))) return dir;
  const ck = path.join(dir, 'checkpoint');
  if (fs.existsSync(path.join(ck, 'config.json'))) return ck;
  throw new ConfigError(
    'model-dir',
    `${dir} is neither a model folder (config.json) nor a run folder (checkpoint/config.json)`,
  );
}

/** The weights' fingerprint: sha256 over the folder's *.safetensors files (in name order), as `fp_` + 16 hex digits. */
async function weightsFingerprint(dir: string): Promise<string> {
  const h = createHash('sha256');
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.safetensors') && f !== 'optimizer.safetensors')
    .sort();
  for (const f of files) for await (const c of fs.createReadStream(path.join(dir, f))) h.update(c as Buffer);
  return `fp_${h.digest('hex').slice(0, 16)}`;
}

/**
 * Load a model folder (or a run folder's checkpoint) for serving: weights on the chosen backend, its tokenizer, its
 * chat template (the folder's own Jinja template; else ChatML where the tokenizer has ChatML's tokens; else a plain
 * transcript), its end-of-sequence ids and sampling defaults (generation_config.json).
 */
export async function loadServedModel(
  dir: string,
  f: {
    backend: (typeof BACKEND_CHOICES)[number];
    threads?: number;
    quantize?: QuantizeFlag;
    modelName?: string;
  } & SpeculativeFlags,
): Promise<ServedModel> {
  const folder = modelFolderOf(dir);
  const L = await loadForGeneration(folder, f);
  const speculative = await loadSpeculative(f, L);
  const pool = await readPooling(folder); // how /v1/embeddings pools (sentence-transformers' modules, else the last token)
  const tok = L.tokenizer;
  if (!L.codec || !tok)
    throw new ConfigError('model-dir', `${folder} has no tokenizer (tokenizer.json); serving needs one`);
  const template = await loadChatTemplate(folder, () =>
    tok.specialTokens.has(IM_START) ? chatmlTemplate() : transcriptTemplate(),
  );
  const { eos: _eos, source: _source, ...defaults } = L.defaults;
  const abs = path.resolve(folder);
  const name =
    f.modelName ?? (path.basename(abs) === 'checkpoint' ? path.basename(path.dirname(abs)) : path.basename(abs));
  return {
    name,
    model: L.model,
    weights: describeWeights(L.weights),
    codec: L.codec,
    template,
    eosTokens: L.stopTokens,
    specialId: (s) => tok.specialTokens.get(s),
    defaults,
    bosId: leadingBos(tok) ?? null,
    fingerprint: await weightsFingerprint(folder),
    created: Math.floor(Date.now() / 1000),
    ...(speculative ? { speculative } : {}),
    embedding: {
      pooling: pool.pooling,
      normalize: pool.normalize,
      bos: leadingBos(tok) ?? null,
      eos: trailingEos(tok) ?? null,
    },
  };
}

export async function main(argv: string[]): Promise<number> {
  // parse
  const int = (flag: string, min: number) => (v: string) => {
    const x = numberFlag(flag, { integer: true })(v);
    if (x < min) throw new ConfigError(flag, `expected an integer ≥ ${min}, got '${v}'`);
    return x;
  };
  const program = new Command('llmts serve')
    .description(
      "serve a model with OpenAI's API (/v1/chat/completions, /v1/completions, /v1/models, /health) and a chat page at /; " +
        'requests generate one at a time through a queue',
    )
    .argument('<model-dir|run-dir>', 'Hugging Face model folder with a tokenizer, or a run folder (its checkpoint/)')
    .addOption(new Option('--host <host>', 'interface to bind (0.0.0.0: every interface)').default('127.0.0.1'))
    .addOption(new Option('--port <n>', 'port (0: any free port)').argParser(int('--port', 0)).default(8080))
    .addOption(
      new Option('--api-key <key>', 'require Authorization: Bearer <key> on API requests').env('LLMTS_API_KEY'),
    )
    .addOption(new Option('--model-name <name>', "the model's id in the API (default: the folder's name)"))
    .addOption(
      new Option('--max-queue <n>', 'requests that may wait for a turn; more get 429')
        .argParser(int('--max-queue', 0))
        .default(16),
    )
    .addOption(
      new Option('--parallel <n>', 'replies generated at once, their decode steps batched (slots)')
        .argParser(int('--parallel', 1))
        .default(4),
    )
    .addOption(
      new Option(
        '--prefill-chunk <n>',
        'prompt tokens per prefill forward, the other replies stepping between chunks (default 256 with --parallel > 1; 0: whole)',
      ).argParser(int('--prefill-chunk', 0)),
    )
    .addOption(
      new Option('--max-tokens <n>', 'most new tokens per reply (and the default)')
        .argParser(int('--max-tokens', 1))
        .default(1024),
    )
    .addOption(
      new Option('--max-wait <s>', 'longest wait for a turn in seconds; past it 503')
        .argParser(int('--max-wait', 1))
        .default(120),
    )
    .addOption(
      new Option(
        '--reasoning-format <format>',
        "a thinking model's replies: 'deepseek' returns <think>…</think> as reasoning_content (vLLM, llama-server); 'none' leaves them as written",
      )
        .choices(['none', 'deepseek'])
        .default('none'),
    )
    .addOption(
      new Option('--timeout <s>', "wall time of one request's generation in seconds (the reply ends there)")
        .argParser(int('--timeout', 1))
        .default(300),
    )
    .addOption(
      new Option('--cache-slots <n>', "prompt caches kept for conversations' next turns (0: none)")
        .argParser(int('--cache-slots', 0))
        .default(4),
    )
    .addOption(new Option('--backend <name>', 'compute backend').choices(BACKEND_CHOICES).default('auto'))
    .addOption(new Option('--threads <n>', 'worker threads of the wasm backend').argParser(int('--threads', 1)))
    .addOption(quantizeOption('store the linear weights for faster decoding as'))
    .addOption(new Option('--db <file>', 'the feedback store (SQLite; default: feedback.sqlite in the model folder)'))
    .addOption(new Option('--no-db', 'no feedback store: the page chats but keeps nothing'))
    .addOption(
      new Option(
        '--compare <dir>',
        "a second model or run folder: the page's Compare view asks both, blind, for a choice",
      ),
    )
    .addOption(
      new Option('--runs-dir <dir>', 'where "Improve the model" on the page writes its training runs').default('runs'),
    )
    .option('--quiet', 'no line per request');
  addSpeculativeFlags(program);
  const code = parseOrExit(program, argv);
  if (code !== null) return code;
  const [dir] = program.processedArgs as [string];
  const f = program.opts<ServeFlags>();
  checkSpeculativeFlags(f);

  // load
  const served = await loadServedModel(dir, f);

  // the feedback store: the API at /api and the page's replies recorded
  const folder = modelFolderOf(dir);
  const dbFile = f.db === false ? null : (f.db ?? path.join(folder, 'feedback.sqlite'));
  const store = dbFile === null ? null : FeedbackStore.open(dbFile);
  if (f.compare && !store)
    throw new ConfigError('--compare', 'Compare records its choices in the feedback store: drop --no-db');
  // the Compare view's second model decodes plainly (a draft model is loaded for the served one only)
  const plainFlags = { ...f, modelDraft: undefined, lookup: undefined, draftMax: undefined, draftPMin: undefined };
  const candidate = f.compare
    ? { served: await loadServedModel(f.compare, plainFlags), dir: modelFolderOf(f.compare) }
    : null;

  // the replies' recorder follows the served checkpoint ("Improve the model" may switch it)
  let record = store ? replyRecorder(store, folder) : null;
  const improve = store
    ? new ImproveJob({
        store,
        modelDir: folder,
        outDir: f.runsDir,
        backend: f.backend,
        switchTo: async (dir) => {
          const next = await loadServedModel(dir, { ...f, modelName: served.name });
          await switchServedModel(server.state, next, f.cacheSlots);
          record = replyRecorder(store, dir);
        },
      })
    : null;

  // serve
  const err = (s: string) => process.stderr.write(`${s}\n`);
  const server = createServer({
    ...(store && improve
      ? {
          routes: [feedbackRoute(store), improveRoute(improve)],
          replyLinker: replyLinker(store, (r) => record!(r)),
        }
      : {}),
    ...(store && candidate
      ? { stateRoutes: (state) => [compareRoute(state, store, { served, dir: folder }, candidate)] }
      : {}),
    served,
    host: f.host,
    port: f.port,
    apiKey: f.apiKey ?? null,
    maxQueue: f.maxQueue,
    parallel: f.parallel,
    ...(f.prefillChunk !== undefined ? { prefillChunk: f.prefillChunk } : {}),
    maxTokens: f.maxTokens,
    maxWaitMs: f.maxWait * 1000,
    timeoutMs: f.timeout * 1000,
    reasoningFormat: f.reasoningFormat,
    promptCacheSlots: f.cacheSlots,
    ...(f.quiet ? {} : { log: err }),
  });
  let url: string;
  try {
    url = await server.listen();
  } catch (e) {
    const x = e as NodeJS.ErrnoException;
    if (x.code === 'EADDRINUSE' || x.code === 'EACCES' || x.code === 'EADDRNOTAVAIL')
      throw new ConfigError(
        '--port',
        `cannot listen on ${f.host}:${f.port}: ${x.code} (choose another --port or --host)`,
      );
    throw e;
  }
  console.log(`llmts serve: ${url}/ (chat page), OpenAI API at ${url}/v1`);
  console.log(store ? `feedback store: ${dbFile} (API at ${url}/api)` : 'feedback store: none (--no-db)');
  console.log(
    `model '${served.name}' (${served.weights ? `${served.weights} weights, ` : ''}${served.template.kind} template, context ${served.model.config.maxPositions} tokens, ` +
      `${getBackend().describe()}); ${f.apiKey ? 'API key required; ' : ''}Ctrl-C stops`,
  );
  if (served.speculative) {
    const upTo = `drafts up to ${served.speculative.maxDraft ?? DEFAULT_MAX_DRAFT} tokens per check`;
    console.log(
      f.lookup
        ? `speculative decoding: prompt lookup, ${upTo}`
        : `speculative decoding: draft model ${f.modelDraft} (p-min ${f.draftPMin ?? DRAFT_P_MIN}), ${upTo}`,
    );
  }
  if (f.host !== '127.0.0.1' && f.host !== 'localhost' && f.host !== '::1' && !f.apiKey)
    err(`warning: listening on ${f.host} without --api-key: anyone who can reach this port can use the model`);

  // wait for Ctrl-C / SIGTERM, then close cleanly
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      err('llmts serve: closing');
      improve?.stop();
      void server.close().then(() => {
        store?.close();
        resolve();
      });
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  return 0;
}
