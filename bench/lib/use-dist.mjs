// `node --import tsx --import ./bench/lib/use-dist.mjs …`: registers dist-hooks.mjs after tsx, so its
// resolve hook runs first and sees tsx's answer (a src/*.ts URL) to swap for the compiled twin.
import { register } from "node:module";

register("./dist-hooks.mjs", import.meta.url);
