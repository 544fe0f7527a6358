/**
 * `llmts chat <model-dir>`: talk to a model in the terminal. Replies stream as they are generated; Ctrl-C stops a
 * reply, and at the prompt cancels the line (Ctrl-C twice in a row, /exit or end of input leaves). The chat template
 * is the model's own (tokenizer_config.json `chat_template`), else ChatML. When the history no longer fits the context
 * window, the oldest turns are dropped from what the model sees (and the user is told); /save still saves them.
 *
 * Commands: /reset  /system <text>  /temp <t>  /probs  /save <file>  /help  /exit
 */
import { Command, Option } from 'commander';
import * as readline from 'node:readline';
import {
  chatmlTemplate,
  IM_START,
  loadChatTemplate,
  transcriptTemplate,
  withTemplateKwargs,
} from '../chat/template.js';
import { ChatSession } from '../chat/session.js';
import type { ChatMessage } from '../chat/template.js';
import { ConfigError, LlmtsError } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';
import {
  addSamplerFlags,
  colourByProb,
  loadForGeneration,
  loadSpeculative,
  parseOrExit,
  samplerFromFlags,
  useColour,
  type SamplerFlags,
} from './generate.js';
import { addSpeculativeFlags, checkSpeculativeFlags, type SpeculativeFlags } from './speculative_flags.js';
import { describeWeights } from '../model/quantize.js';

const HELP = `commands:
  /reset          forget the conversation (keeps the system prompt)
  /system <text>  set the system prompt (/system alone clears it)
  /temp <t>       set the sampling temperature (0 = greedy)
  /probs          toggle colouring each token by its probability
  /save <file>    save the whole conversation as JSON (also turns dropped from the context)
  /help           this list
  /exit           leave (also Ctrl-D)
Ctrl-C stops a reply while it is being written, and cancels the line at the prompt (twice in a row: leave).`;

interface ChatFlags extends SamplerFlags, SpeculativeFlags {
  system?: string;
  chatTemplateKwargs?: Record<string, unknown>;
  probs?: boolean;
  contextLength?: number;
}

/** Where the REPL reads and writes (the terminal by default; tests pass streams). */
export interface ChatIO {
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream & { isTTY?: boolean };
}

export async function main(
  argv: string[],
  io: ChatIO = { input: process.stdin, output: process.stdout },
): Promise<number> {
  // parse
  const program = addSpeculativeFlags(
    addSamplerFlags(
      new Command('llmts chat')
        .description('chat with a model in the terminal')
        .argument('<model-dir>', 'Hugging Face model folder with a tokenizer, or a .gguf file'),
    ),
  )
    .option('--system <text>', 'system prompt')
    .option('--probs', 'colour each token by its probability')
    .addOption(
      new Option(
        '--chat-template-kwargs <json>',
        "variables for the model's Jinja chat template, e.g. '{\"enable_thinking\": false}' (Qwen3: no thinking)",
      ).argParser((v) => {
        let x: unknown;
        try {
          x = JSON.parse(v);
        } catch {
          x = undefined;
        }
        if (typeof x !== 'object' || x === null || Array.isArray(x))
          throw new ConfigError('--chat-template-kwargs', `expected a JSON object, got '${v}'`);
        return x as Record<string, unknown>;
      }),
    )
    .addOption(
      new Option('--context-length <n>', 'context window in tokens (default: the model’s)').argParser((v) => {
        const x = Number(v);
        if (!Number.isInteger(x) || x < 1)
          throw new ConfigError('--context-length', `expected an integer ≥ 1, got '${v}'`);
        return x;
      }),
    );
  const code = parseOrExit(program, argv);
  if (code !== null) return code;
  const [dir] = program.processedArgs as [string];
  const f = program.opts<ChatFlags>();

  checkSpeculativeFlags(f);

  // load
  const L = await loadForGeneration(dir, f);
  const speculative = await loadSpeculative(f, L);
  if (!L.codec || !L.tokenizer)
    throw new ConfigError('model-dir', `${dir} has no tokenizer (tokenizer.json); chat needs one`);
  const tok = L.tokenizer;
  // A model's own template; else ChatML when its tokenizer has ChatML's tokens; else a plain transcript (base models).
  const own = await loadChatTemplate(dir, () =>
    tok.specialTokens.has(IM_START) ? chatmlTemplate() : transcriptTemplate(),
  );
  const template = f.chatTemplateKwargs ? withTemplateKwargs(own, f.chatTemplateKwargs) : own;
  const session = new ChatSession(L.model, L.codec, {
    template,
    system: f.system ?? null,
    sampler: samplerFromFlags(f, L.defaults),
    maxTokens: f.maxTokens ?? 256,
    stopTokens: L.stopTokens,
    specialId: (s) => tok.specialTokens.get(s),
    ...(f.stop?.length ? { stop: f.stop } : {}),
    ...(f.seed !== undefined ? { seed: f.seed } : {}),
    ...(f.contextLength !== undefined ? { contextLength: f.contextLength } : {}),
    ...(speculative ? { speculative } : {}),
  });
  let showProbs = !!f.probs;
  const out = io.output;
  const colour = io.output === process.stdout ? useColour() : false;
  const info = (s: string) => out.write(colour ? `\x1b[2m${s}\x1b[0m\n` : `${s}\n`);

  // run
  const inTTY = (io.input as { isTTY?: boolean }).isTTY === true;
  const rl = readline.createInterface({ input: io.input, output: out, terminal: inTTY && out.isTTY === true });
  let current: AbortController | null = null;
  // Ctrl-C stops a reply; at the prompt it cancels the line being typed, as shells do, and a second one in a row leaves.
  let ctrlC = 0;
  rl.on('SIGINT', () => {
    if (current) return current.abort();
    if (++ctrlC >= 2) return rl.close();
    rl.write(null, { ctrl: true, name: 'e' }); // to the end of the line, then delete it all
    rl.write(null, { ctrl: true, name: 'u' });
    out.write('^C\n');
    info('(Ctrl-C again, Ctrl-D or /exit to leave)');
    rl.prompt();
  });
  // Messages dropped from the context window: /save writes the whole conversation, not only what still fits.
  let archived: ChatMessage[] = [];
  info(
    `llmts chat: ${dir} (${L.weights.kind === 'f32' ? '' : `${describeWeights(L.weights)} weights, `}${template.kind} template, ` +
      `context ${session.window} tokens, seed ${session.baseSeed}). /help for commands.`,
  );
  rl.setPrompt('> ');
  rl.prompt();
  try {
    for await (const raw of rl) {
      ctrlC = 0;
      const line = raw.trim();
      if (line === '') {
        rl.prompt();
        continue;
      }
      if (line.startsWith('/')) {
        const cmd = line.split(/\s+/, 1)[0]!;
        const rest = line.slice(cmd.length).trim();
        if (cmd === '/exit' || cmd === '/quit') break;
        try {
          switch (cmd) {
            case '/help':
              info(HELP);
              break;
            case '/reset':
              session.reset();
              archived = [];
              info('[conversation cleared]');
              break;
            case '/system':
              session.setSystem(rest || null);
              info(rest ? '[system prompt set]' : '[system prompt cleared]');
              break;
            case '/temp': {
              const t = Number(rest);
              if (rest === '' || !Number.isFinite(t))
                throw new ConfigError('/temp', `expected a number, got '${rest}'`);
              session.setSampler({ temperature: t });
              info(`[temperature ${t}]`);
              break;
            }
            case '/probs':
              showProbs = !showProbs;
              info(`[probabilities ${showProbs ? 'on' : 'off'}]`);
              break;
            case '/save': {
              if (!rest) throw new ConfigError('/save', 'give a file name: /save chat.json');
              const conv = session.conversation.toJSON();
              const doc = {
                model: dir,
                template: template.kind,
                seed: session.baseSeed,
                sampler: session.sampler,
                ...conv,
                messages: [...archived, ...conv.messages],
              };
              await writeFileAtomic(rest, JSON.stringify(doc, null, 2) + '\n');
              info(`[saved ${doc.messages.length} messages to ${rest}]`);
              break;
            }
            default:
              info(`unknown command ${cmd}; /help lists them`);
          }
        } catch (e) {
          if (e instanceof LlmtsError) info(`error: ${e.message}`);
          else throw e;
        }
        rl.prompt();
        continue;
      }
      // a user message
      current = new AbortController();
      try {
        const r = session.reply(line, { signal: current.signal });
        archived.push(...r.dropped);
        if (r.dropped.length > 0)
          info(
            `[dropped the ${r.dropped.length} oldest message${r.dropped.length > 1 ? 's' : ''} to fit the ${session.window}-token context]`,
          );
        for await (const ev of r) {
          if (ev.isStopToken) out.write(ev.text);
          else out.write(showProbs && ev.text ? colourByProb(ev.text, Math.exp(ev.logprob), colour) : ev.text);
        }
        out.write('\n');
        if (r.finishReason === 'length') info('[reply cut at the token limit]');
        else if (r.text.trim() === '')
          info(
            '[the model ended its reply at once: a base model that was never trained on conversations often does; try /temp 1, or `llmts generate` to continue text]',
          );
      } catch (e) {
        if (current.signal.aborted) out.write('\n' + (colour ? '\x1b[2m[stopped]\x1b[0m' : '[stopped]') + '\n');
        else if (e instanceof LlmtsError) info(`error: ${e.message}`);
        else throw e;
      } finally {
        current = null;
      }
      rl.prompt();
    }
  } finally {
    rl.close();
    session.dispose();
  }
  return 0;
}
