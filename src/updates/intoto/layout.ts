import { fail } from "../../errors/index.js";
import { keyIdOf, type TufKey, type TufSigner } from "../keys.js";
import { addSignaturesTo } from "./sign.js";
import { checkRules } from "./rules.js";
import type { ArtifactRule, Inspection, Layout, LayoutKey, Metablock, Step } from "./types.js";

export interface StepInput {
  name: string;
  /** Functionaries' public keys (in-toto form, see tufKeyFromSpki(…, { intoto: true })). */
  functionaries: TufKey[];
  threshold?: number;
  expectedCommand?: string[];
  materials: ArtifactRule[];
  products: ArtifactRule[];
}

export interface InspectionInput {
  name: string;
  run: string[];
  materials: ArtifactRule[];
  products: ArtifactRule[];
}

/** The layout key entry in-toto 1.3.1 expects: the key with its own `keyid` (computed with keyid_hash_algorithms). */
export function layoutKey(key: TufKey): LayoutKey {
  const k: TufKey = { ...key, keyid_hash_algorithms: key.keyid_hash_algorithms ?? ["sha256", "sha512"] };
  return { keyid: keyIdOf(k), ...k };
}

/** Builds a layout; every rule list is checked and must end with ["DISALLOW", "*"]. */
export function buildLayout(opts: {
  expires: string;
  readme?: string;
  steps: StepInput[];
  inspections?: InspectionInput[];
}): Layout {
  const keys: Record<string, LayoutKey> = {};
  const names = new Set<string>();
  const steps: Step[] = opts.steps.map((s) => {
    if (names.has(s.name)) fail("FR_UPDATES_INTOTO", `step name ${s.name} is used twice`);
    names.add(s.name);
    checkRules(s.materials, `step ${s.name} materials`);
    checkRules(s.products, `step ${s.name} products`);
    const ids = s.functionaries.map((f) => {
      const k = layoutKey(f);
      keys[k.keyid] = k;
      return k.keyid;
    });
    const threshold = s.threshold ?? 1;
    if (threshold < 1 || threshold > ids.length)
      fail("FR_UPDATES_INTOTO", `step ${s.name}: threshold exceeds its functionaries`);
    return {
      _type: "step",
      name: s.name,
      threshold,
      pubkeys: ids,
      expected_command: s.expectedCommand ?? [],
      expected_materials: s.materials,
      expected_products: s.products,
    };
  });
  const inspect: Inspection[] = (opts.inspections ?? []).map((i) => {
    if (names.has(i.name)) fail("FR_UPDATES_INTOTO", `inspection name ${i.name} is used twice`);
    names.add(i.name);
    checkRules(i.materials, `inspection ${i.name} materials`);
    checkRules(i.products, `inspection ${i.name} products`);
    return {
      _type: "inspection",
      name: i.name,
      run: i.run,
      expected_materials: i.materials,
      expected_products: i.products,
    };
  });
  if (Number.isNaN(Date.parse(opts.expires))) fail("FR_UPDATES_INTOTO", "expires must be an ISO 8601 time");
  return { _type: "layout", expires: opts.expires, readme: opts.readme ?? "", keys, steps, inspect };
}

export async function signLayout(layout: Layout, signers: readonly TufSigner[]): Promise<Metablock<Layout>> {
  return addSignaturesTo({ signed: layout, signatures: [] }, signers);
}
