// Where a server error belongs: Kiln's BadRequest field paths ("spec.depthwise_conv2d.strides",
// "inputs[1]", "definition.nodes[4].layer.dense.units") mapped to a card's field or socket.
import type { ApiError } from "./client";

interface Segment {
  name: string;
  index?: number;
}

export function splitPath(path: string): Segment[] {
  return path
    .split(".")
    .filter((s) => s !== "")
    .map((s) => {
      const m = /^([^[\]]*)\[(\d+)\]$/.exec(s);
      return m ? { name: m[1], index: Number(m[2]) } : { name: s };
    });
}

export interface CardTarget {
  arg?: string; // a field of the card
  input?: number; // one of its input sockets
}

// A path relative to the card's request: AddLayer's (spec.<class>.<arg>, inputs[i]), AddInput's
// (input.<arg>), CallLayer's (inputs[i]), or a definition node's (layer.<class>.<arg>,
// input.<arg>, inputs[i]).
export function cardTarget(segs: Segment[]): CardTarget | undefined {
  const [a, b, c] = segs;
  if (!a) return undefined;
  if (a.name === "inputs" && a.index !== undefined) return { input: a.index };
  if ((a.name === "spec" || a.name === "layer") && c) return { arg: c.name };
  if (a.name === "input" && b) return { arg: b.name };
  return undefined;
}

export interface CardErrors {
  fieldErrors: Record<string, string>;
  inputErrors: Record<number, string>;
  unplaced: string[]; // messages that name no field of the card: shown on the card itself
}

export function cardErrors(err: ApiError, relative: (path: string) => Segment[] | undefined): CardErrors {
  const out: CardErrors = { fieldErrors: {}, inputErrors: {}, unplaced: [] };
  for (const v of err.fieldViolations) {
    const segs = relative(v.field);
    const t = segs && cardTarget(segs);
    if (t?.arg) out.fieldErrors[t.arg] = v.description;
    else if (t?.input !== undefined) out.inputErrors[t.input] = v.description;
    else out.unplaced.push(`${v.field}: ${v.description}`);
  }
  if (err.fieldViolations.length === 0) out.unplaced.push(err.message);
  return out;
}

// For DefineModel: the node a violation names (definition.nodes[i]...), and the rest of its path.
export function definitionNode(path: string): { node: number; rest: Segment[] } | undefined {
  const segs = splitPath(path);
  if (segs[0]?.name !== "definition" || segs[1]?.name !== "nodes" || segs[1].index === undefined) return undefined;
  return { node: segs[1].index, rest: segs.slice(2) };
}

// For Compile (config.optimizer.adam.learning_rate) and definitions (definition.compile...):
// the optimizer argument at fault, or "loss" / "metrics".
export function compileTarget(path: string): string | undefined {
  const segs = splitPath(path);
  const i = segs.findIndex((s) => s.name === "config" || s.name === "compile");
  if (i < 0) return undefined;
  const next = segs[i + 1];
  if (!next) return undefined;
  if (next.name === "optimizer") return segs[i + 3]?.name ?? "optimizer";
  return next.name;
}
