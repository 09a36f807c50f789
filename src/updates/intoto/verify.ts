import { fail } from "../../errors/index.js";
import { canonicalJson } from "../canonical-json.js";
import { keyIdOf, verifyTufSignature, type TufKey } from "../keys.js";
import { applyRules, checkRules } from "./rules.js";
import type { Artifacts, Layout, Link, Metablock } from "./types.js";

export interface VerifyOptions {
  layout: Metablock<Layout>;
  /** The keys the layout must be signed by (each of them, as in-toto-verify requires). */
  layoutKeys: readonly TufKey[];
  links: ReadonlyArray<Metablock<Link>>;
  /** The final product as the device holds it (path → hashes); it takes the place of inspections' files. */
  finalProduct: Artifacts;
  now: Date;
}

const signedBy = (mb: Metablock<unknown>, key: TufKey, keyid: string) => {
  const bytes = canonicalJson(mb.signed);
  return mb.signatures.some((s) => s.keyid === keyid && verifyTufSignature(key, bytes, s.sig));
};

/**
 * in-toto verification of a final product: layout signatures and expiry, a threshold of links per step
 * signed by its functionaries, every step's artifact rules, then the inspections' rules applied to the
 * final product. Fleetroot does not run inspection commands on devices: the product files stand in for
 * what the inspection would have recorded.
 */
export function verifyFinalProduct(o: VerifyOptions): void {
  const layout = o.layout.signed;
  if (layout?._type !== "layout") fail("FR_UPDATES_INTOTO", 'the layout\'s _type is not "layout"');
  if (o.layoutKeys.length === 0) fail("FR_UPDATES_INTOTO", "at least one layout key is needed");
  for (const k of o.layoutKeys) {
    const id = keyIdOf({ ...k, keyid_hash_algorithms: k.keyid_hash_algorithms ?? ["sha256", "sha512"] });
    if (!signedBy(o.layout, k, id) && !signedBy(o.layout, k, keyIdOf(k))) {
      fail("FR_UPDATES_INTOTO", `the layout is not signed by layout key ${id.slice(0, 8)}`);
    }
  }
  if (Date.parse(layout.expires) <= o.now.getTime())
    fail("FR_UPDATES_INTOTO", `the layout expired at ${layout.expires}`);
  const byStep = new Map<string, { materials: Artifacts; products: Artifacts }>();
  for (const step of layout.steps) {
    checkRules(step.expected_materials, `step ${step.name} materials`);
    checkRules(step.expected_products, `step ${step.name} products`);
    const valid = o.links.filter((l) => {
      if (l.signed?._type !== "link" || l.signed.name !== step.name) return false;
      return step.pubkeys.some((id) => {
        const key = layout.keys[id];
        return !!key && signedBy(l, key, id);
      });
    });
    const signers = new Set(
      valid.flatMap((l) => l.signatures.map((s) => s.keyid).filter((id) => step.pubkeys.includes(id))),
    );
    if (signers.size < step.threshold) {
      fail(
        "FR_UPDATES_INTOTO",
        `step ${step.name}: ${signers.size} valid link(s) from its functionaries, ${step.threshold} needed`,
      );
    }
    const first = valid[0]!.signed;
    for (const l of valid.slice(1)) {
      if (
        !canonicalJson([l.signed.materials, l.signed.products]).equals(
          canonicalJson([first.materials, first.products]),
        )
      ) {
        fail(
          "FR_UPDATES_INTOTO",
          `step ${step.name}: functionaries' links disagree on materials or products`,
        );
      }
    }
    byStep.set(step.name, { materials: first.materials, products: first.products });
  }
  for (const step of layout.steps) {
    const own = byStep.get(step.name)!;
    applyRules(step.expected_materials, "materials", own, byStep, `step ${step.name}`);
    applyRules(step.expected_products, "products", own, byStep, `step ${step.name}`);
  }
  for (const insp of layout.inspect) {
    const own = { materials: o.finalProduct, products: o.finalProduct };
    const all = new Map(byStep).set(insp.name, own);
    applyRules(insp.expected_materials, "materials", own, all, `inspection ${insp.name}`);
    applyRules(insp.expected_products, "products", own, all, `inspection ${insp.name}`);
  }
}
