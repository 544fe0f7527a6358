/**
 * The fixed hyper-parameters of `llmts align verify` (issue 11): one set for the full proof (FULL) and one for smoke
 * runs and tests (QUICK). They live here, in the repository, and are the same for every rater and every task — the
 * proof must not be tuned to the rater it is judged by (other raters of the same interface, with other domains and
 * noisy labels, go through this same command). They are not command-line settings on purpose: the command takes a
 * task, a rater and a seed, nothing else to turn.
 *
 * Choices in FULL, and why (each the same for any rater):
 * - every train prompt is sampled and rated (4 replies → up to C(4,2) = 6 pairs each): more distinct prompts rather
 *   than more epochs over half as many;
 * - the reward model takes 3 epochs over those pairs (1 epoch: 78.9 % held-out accuracy; 3: 81.0 %; 5: 81.5 %, its
 *   held-out loss rising from the 3rd);
 * - PPO has no missing-EOS penalty: the penalty tells the policy something the rater may want (ending with EOS),
 *   which is exactly what the proof must not do — with it, PPO against a reward model of flipped labels still beat
 *   SFT 58 % on sotu-desk, from the EOS term alone; without it PPO still learns to end its replies (EOS 99–100 %)
 *   because the rater's feedback says so. 2048 episodes at lr 5e-5: its gold win rate is flat along the run (62 % at
 *   KL 2.1 after a quarter of it, 64 % at KL 3.5 at the end at β 0.05), the reward model being what it learns from;
 * - PPO's KL coefficient β 0.15 (fixed): at 0.05, seed 2's flipped-label control — PPO against a reward model of
 *   noise — drifted to KL 10.8 nats and gibberish (win rate 29.6 %, far outside 50 ± 7) while the real run won
 *   65.6 % at KL 2.7; at 0.15 the same seed gives 65.5 % at KL 2.2 and the control 47.1 %. The adaptive controller
 *   (target 3 nats, horizon 320) did not hold the leash: β fell while KL was under target early on, the real run
 *   ended at KL 5.0 and the control at 32 %. A leash the noise cannot pull far is what the control asks for;
 * - DPO at β 0.1 (the DPO paper's), 3 epochs at lr 1e-4: 63.0 % at KL 4.2, where 1 epoch at 2e-5 gave 57.0 % at
 *   KL 1.2; β 0.3 and 1 beside it (58.8 % at KL 2.3, 57.9 % at KL 0.7) for the report's curve.
 *
 * What the win rates are made of (sotu-desk, seed 1, each policy's held-out replies scored by the rater's terms):
 * SFT's replies are gibberish 14.5 % of the time, one sentence ending with EOS 75 %, over 12 words 23 %, right 12 %;
 * PPO's 4.0 / 97.5 / 1.5 / 12.5 %. PPO learns every term a reward model of this size can read — the form — and so
 * wins where SFT's form fails and ties where both are well formed and equally right or wrong, which caps its win rate
 * in the mid-60s. The reward model reads form (held-out pairs decided by gibberish: 84.5 % right, by the one-sentence
 * term 87 %, by length 77 %) but not facts (pairs decided by the right answer alone: 55 %, chance); a 141 K-parameter
 * model trained from scratch does not know which president gave the 1987 address. The 85 / 70 / 65 % bars need that.
 *
 * Tried against these (sotu-desk, O1, seed 1) and not kept:
 * - SFT 2 epochs (from 4): RM 83.6 %, PPO 69.9 % (CI low 65.2) at KL 2.0, DPO 68.6 % (rewards/accuracies 85.9 %),
 *   best-of-4 68.1 % — but the flipped-label control broke: PPO against the reward model of noise won 59.1 % (outside
 *   50 ± 7). Its replies were shorter than SFT's (5.0 words, 8.1) and ended with EOS more often (99 %, 91 %): the
 *   per-token KL penalty, summed over a reply, costs less for short replies that end, and a weak SFT's unfinished
 *   replies are exactly what this rater punishes — a gain the labels did not teach. SFT 3 epochs: RM 82.1 %, PPO
 *   64.3 %, DPO 61.4 %, flipped PPO 49.9 % (no better than 4 epochs). Kept at 4 (seed 1 each);
 * - SFT 10 epochs (from 4): SFT's replies are right 36 % of the time (12 %), gibberish 3 %, and against that
 *   stronger SFT everything fell: RM 71.6 % (pairs decided by the answer alone: 61 %), PPO 57.5 %, DPO 57.6 %,
 *   best-of-4 62 %, and flipped-label PPO 41 % (outside its 50 ± 7); SFT 8 epochs likewise (RM 77.2 %, PPO 58.6 %);
 * - an SFT that knows the facts (stop 25, seed 1; DPO's extra β skipped): 40 epochs (SFT 90 s) → SFT's held-out
 *   replies right 70 % (its samples on train prompts 84 %), gibberish 1 %; yet the reward model from it checks no
 *   facts — held-out pairs decided by the answer alone 53 % (its own training pairs of that kind 72 %; 10 epochs at
 *   lr 3e-4 or 1e-3 fit 96–97 % of them, reach 55–65 % held out, and lower its held-out accuracy to 66–68 %) — and
 *   RM 74.0 %, PPO 53.8 % at KL 2.0 (right 67 %, one sentence with EOS 97 %), DPO 51.3 %, best-of-4 56 %. The same
 *   with 4 layers (SFT 154 s; whole run 337 s): SFT right 73 %, answer-decided pairs 62.5 % held out (77 % in
 *   training), RM 75.2 %, PPO 54.6 % (right 73 %, unchanged), DPO 55.1 %. Knowledge in the policy does not become
 *   a fact check in the reward model from ~700 answer-decided pairs; what PPO gains is form, and a well-formed SFT
 *   leaves less of it (PPO against SFT on held-out prompts: 59 pairs won and 12 lost on form, 32 won and 42 lost on
 *   the answer, 246 ties). The reward model's score head reads one position, the end of the reply; a fact check
 *   needs the policy's prediction at the answer compared with the answer given, a circuit these models do not learn
 *   from so few pairs;
 * - reward model: lr 1e-3 (79.6 % at 1 epoch, 81.9 % at 3 with weight decay 0.1), batches of 4 prompts (82.2 %),
 *   16 (80.4 %), no margin term (81.5 %): all within a point or two of 81 %;
 * - PPO at lr 1e-4: 63.0–64.5 % at KL 3.9–4.9, no better than 5e-5 for a KL nearer the 5-nat limit;
 * - wider models (96 / 128 wide, with a stronger SFT beside them): RM 74–76 %.
 * Measured with the reward model reading sampled replies as it was trained (reward_input.ts); before that fix it
 * read PPO's and best-of-n's raw sampled ids (EOS where its training replies ended in <|im_end|>, byte tokens where
 * they held U+FFFD), and the same run gave PPO 64.5 % at KL 3.9, best-of-4 63.3 % — within noise of after.
 */
export interface VerifySettings {
  /** The tiny model trained from scratch on the task: a byte-level BPE of `vocabSize` and a GPT-2 of this shape. */
  model: { vocabSize: number; nLayer: number; nHead: number; nEmbd: number; context: number };
  /** Where it computes ('wasm': the SIMD kernels; 'ref': plain JavaScript). */
  backend: 'wasm' | 'ref';
  /** SFT on the train prompts' demonstrations (at most `rows` of them), from the random initialisation. */
  sft: { rows: number; epochs: number; batchSize: number; lr: number; minLr: number; warmupSteps: number };
  /** Replies sampled from SFT per train prompt (at most `prompts` train prompts), at temperature 1. */
  sample: { prompts: number; perPrompt: number; maxTokens: number };
  /** The reward model (`llmts reward` from the SFT folder) on every pair the rater's `compare` did not tie. */
  reward: {
    epochs: number;
    batchSize: number;
    lr: number;
    minLr: number;
    evalFraction: number;
    /** Equal-width bins of predicted P(chosen ≻ rejected) in the calibration of its held-out pairs. */
    calibrationBins: number;
  };
  /** PPO (`llmts ppo`) from SFT against the reward model, on the same train prompts. */
  ppo: {
    totalEpisodes: number;
    batchSize: number;
    miniBatchSize: number;
    ppoEpochs: number;
    lr: number;
    klCoef: number;
    missingEosPenalty: number;
    /**
     * Policies on the gold win rate against √KL curve: the run checkpoints every ⌈steps / curvePoints⌉ steps and
     * each checkpoint (the last is the final policy) is evaluated on the held-out prompts as the final one is.
     */
    curvePoints: number;
  };
  /** DPO (`llmts dpo`, sigmoid loss) from SFT on the same pairs. */
  dpo: {
    beta: number;
    epochs: number;
    batchSize: number;
    lr: number;
    minLr: number;
    /** Further DPO runs, the same but for β, after the main one (the report's DPO at 3 β): win rate and KL of each. */
    extraBetas: readonly number[];
  };
  /** Evaluation: one reply per held-out prompt (at most `prompts`) and policy, best-of-`bestOf` under the RM. */
  evaluate: { prompts: number; bestOf: number };
  /** Prompts of the fixed table of replies in the report. */
  tablePrompts: number;
}

/** The proof: ~1000 train prompts × 4 replies, 400 held-out prompts. */
export const FULL: Readonly<VerifySettings> = Object.freeze({
  model: { vocabSize: 512, nLayer: 2, nHead: 4, nEmbd: 64, context: 128 },
  backend: 'wasm',
  sft: { rows: 100000, epochs: 4, batchSize: 16, lr: 2e-3, minLr: 2e-4, warmupSteps: 20 },
  sample: { prompts: 100000, perPrompt: 4, maxTokens: 32 },
  reward: { epochs: 3, batchSize: 8, lr: 3e-4, minLr: 3e-5, evalFraction: 0.1, calibrationBins: 10 },
  ppo: {
    totalEpisodes: 2048,
    batchSize: 32,
    miniBatchSize: 8,
    ppoEpochs: 4,
    lr: 5e-5,
    klCoef: 0.15,
    missingEosPenalty: 0,
    curvePoints: 4,
  },
  dpo: { beta: 0.1, epochs: 3, batchSize: 8, lr: 1e-4, minLr: 1e-5, extraBetas: [0.3, 1] },
  evaluate: { prompts: 400, bestOf: 4 },
  tablePrompts: 12,
});

/** Smoke runs and tests: the same pipeline in well under a minute (its figures mean nothing). */
export const QUICK: Readonly<VerifySettings> = Object.freeze({
  model: { vocabSize: 320, nLayer: 1, nHead: 2, nEmbd: 48, context: 128 },
  backend: 'wasm',
  sft: { rows: 480, epochs: 2, batchSize: 8, lr: 3e-3, minLr: 3e-4, warmupSteps: 0 },
  sample: { prompts: 24, perPrompt: 4, maxTokens: 16 },
  reward: { epochs: 1, batchSize: 4, lr: 1e-3, minLr: 1e-4, evalFraction: 0.25, calibrationBins: 5 },
  ppo: {
    totalEpisodes: 16,
    batchSize: 8,
    miniBatchSize: 4,
    ppoEpochs: 1,
    lr: 1e-4,
    klCoef: 0.05,
    missingEosPenalty: 0,
    curvePoints: 2,
  },
  dpo: { beta: 0.1, epochs: 1, batchSize: 4, lr: 1e-4, minLr: 1e-5, extraBetas: [] },
  evaluate: { prompts: 24, bestOf: 4 },
  tablePrompts: 4,
});
