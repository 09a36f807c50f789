import type { TufKey } from "../keys.js";
import type { Signature } from "../metadata.js";

/** An artifact rule, e.g. ["MATCH", "app.bin", "WITH", "PRODUCTS", "FROM", "build"] or ["DISALLOW", "*"]. */
export type ArtifactRule = string[];
export type Hashes = Record<string, string>;
export type Artifacts = Record<string, Hashes>;

export interface LayoutKey extends TufKey {
  keyid: string;
}

export interface Step {
  _type: "step";
  name: string;
  threshold: number;
  pubkeys: string[];
  expected_command: string[];
  expected_materials: ArtifactRule[];
  expected_products: ArtifactRule[];
}

export interface Inspection {
  _type: "inspection";
  name: string;
  run: string[];
  expected_materials: ArtifactRule[];
  expected_products: ArtifactRule[];
}

export interface Layout {
  _type: "layout";
  expires: string;
  readme: string;
  keys: Record<string, LayoutKey>;
  steps: Step[];
  inspect: Inspection[];
}

export interface Link {
  _type: "link";
  name: string;
  command: string[];
  materials: Artifacts;
  products: Artifacts;
  byproducts: { "return-value"?: number; stdout?: string; stderr?: string };
  environment: Record<string, unknown>;
}

/** in-toto 1.x "Metablock": the signed object and signatures over its canonical JSON. */
export interface Metablock<T> {
  signed: T;
  signatures: Signature[];
}
