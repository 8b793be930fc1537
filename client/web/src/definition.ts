// The card graph as a DefineModel definition (the JSON `kiln model define` reads) and back:
// node order, object values in their sockets, the compile panel as CompileConfig.
import { camel, defaultValues, emitClass, valuesFromJson } from "./catalogue";
import type { Catalogue } from "./gen/kiln/v1/catalogue_pb";
import { classOf, parsePort, portName, resolvedValues, topoOrder } from "./graph";
import { getState, setState, type AppState, type Card } from "./store";

export class DefinitionError extends Error {
  constructor(
    readonly card: string,
    readonly field: string,
    message: string,
  ) {
    super(`${card}.${field}: ${message}`);
  }
}

// The graph as ModelDefinition JSON (snake_case, as tests/fixtures/mobilenet_fashion_mnist.json),
// with the node order DefineModel requires. `order` maps node index to card id, for errors.
export function toDefinition(s: AppState): { json: Record<string, unknown>; order: string[] } {
  const cat = s.catalogue;
  if (!cat) throw new Error("the catalogue has not loaded");
  // Object cards have no node: their values go into the sockets they are wired into.
  const cards = topoOrder(s.cards.filter((c) => c.kind !== "object"));
  const nodes = cards.map((c) => {
    const node: Record<string, unknown> = { id: c.id };
    if (c.kind === "call") {
      node.call = c.callOf;
    } else {
      const cls = classOf(cat, c);
      if (!cls) throw new DefinitionError(c.id, "", `unknown class ${c.className}`);
      const e = emitClass(cat, cls, resolvedValues(s, c));
      if ("error" in e) throw new DefinitionError(c.id, e.field, e.error);
      if (c.kind === "input") node.input = e.json;
      else node.layer = { [cls.field]: e.json };
    }
    if (c.kind !== "input") node.inputs = c.inputs.map(portName);
    return node;
  });
  const json: Record<string, unknown> = { name: s.modelName, nodes };
  if (s.modelInputs) json.inputs = s.modelInputs;
  if (s.modelOutputs) json.outputs = s.modelOutputs;
  const compile = compileJson(s);
  if (compile) json.compile = compile;
  return { json, order: cards.map((c) => c.id) };
}

// The compile panel as CompileConfig JSON; undefined until a loss is chosen.
export function compileJson(s: AppState): Record<string, unknown> | undefined {
  const cat = s.catalogue;
  const c = s.compile;
  if (!cat || !c || !c.loss) return undefined;
  const opt = cat.optimizers.find((o) => o.field === c.optimizer);
  if (!opt) return undefined;
  const e = emitClass(cat, opt, c.optimizerValues);
  if ("error" in e) throw new DefinitionError("compile", e.field, e.error);
  const loss: Record<string, unknown> = { name: c.loss };
  if (c.fromLogits) loss.from_logits = true;
  return { optimizer: { [opt.field]: e.json }, loss, metrics: c.metrics };
}

function key(obj: Record<string, unknown>, snakeName: string): unknown {
  return obj[snakeName] ?? obj[camel(snakeName)];
}

// Replaces the graph with a definition's nodes, laid out by depth (left to right).
export function loadDefinition(json: Record<string, unknown>): void {
  const s = getState();
  const cat = s.catalogue;
  if (!cat || !cat.input) throw new Error("the catalogue has not loaded");
  const nodes = (json.nodes ?? []) as Record<string, unknown>[];
  const cards: Card[] = [];
  const depth = new Map<string, number>();
  const lanes = new Map<number, number>();
  for (const [i, node] of nodes.entries()) {
    const id = String(node.id ?? `node_${i}`);
    const inputs = ((node.inputs ?? []) as string[]).map(parsePort);
    let card: Card;
    if (node.input) {
      card = { id, kind: "input", className: cat.input.className, values: valuesFromJson(cat, cat.input, node.input as Record<string, unknown>), inputs: [], position: { x: 0, y: 0 } };
    } else if (node.call !== undefined) {
      const source = cards.find((c) => c.id === node.call);
      if (!source) throw new Error(`node ${id} calls ${String(node.call)}, which no earlier node defines`);
      card = { id, kind: "call", className: source.className, values: {}, callOf: source.id, inputs, position: { x: 0, y: 0 } };
    } else {
      const layer = (node.layer ?? {}) as Record<string, unknown>;
      const [field, config] = Object.entries(layer)[0] ?? [];
      const cls = cat.layers.find((c) => c.field === field || camel(c.field) === field);
      if (!cls) throw new Error(`node ${id}: unknown layer ${String(field)}`);
      card = { id, kind: "layer", className: cls.className, values: valuesFromJson(cat, cls, (config ?? {}) as Record<string, unknown>), inputs, position: { x: 0, y: 0 } };
    }
    const d = Math.max(-1, ...inputs.map((p) => depth.get(p.card) ?? 0), card.callOf ? (depth.get(card.callOf) ?? 0) : -1) + 1;
    depth.set(id, d);
    const lane = lanes.get(d) ?? 0;
    lanes.set(d, lane + 1);
    card.position = { x: d, y: lane };
    cards.push(card);
  }
  // Depths left to right, wrapped into bands of PER_BAND columns so that a long chain stays
  // readable; a band is as tall as its widest depth.
  const PER_BAND = 6;
  const bandTop: number[] = [40];
  for (const [d, n] of [...lanes].sort((a, b) => a[0] - b[0])) {
    const band = Math.floor(d / PER_BAND);
    bandTop[band + 1] = Math.max(bandTop[band + 1] ?? 0, bandTop[band] + n * 480);
  }
  for (const c of cards) {
    const d = c.position.x;
    const band = Math.floor(d / PER_BAND);
    c.position = { x: 40 + (d % PER_BAND) * 300, y: bandTop[band] + c.position.y * 480 };
  }
  const list = (name: string) => {
    const v = key(json, name);
    return Array.isArray(v) && v.length ? v.map(String) : undefined;
  };
  const compile = key(json, "compile") as Record<string, unknown> | undefined;
  setState((st) => ({
    ...st,
    cards,
    live: {},
    selected: undefined,
    modelName: typeof json.name === "string" && json.name ? json.name : st.modelName,
    modelInputs: list("inputs"),
    modelOutputs: list("outputs"),
    compile: compile ? compileFromJson(cat, compile, st) : st.compile,
  }));
}

function compileFromJson(cat: Catalogue, json: Record<string, unknown>, st: AppState): AppState["compile"] {
  const opt = (json.optimizer ?? {}) as Record<string, unknown>;
  const [field, config] = Object.entries(opt)[0] ?? [];
  let optimizer = st.compile?.optimizer ?? "";
  let optimizerValues = st.compile?.optimizerValues ?? {};
  const byName = field === "name" ? cat.optimizers.find((o) => o.identifiers.some((i) => i.toLowerCase() === String(config).toLowerCase())) : undefined;
  const cls = byName ?? cat.optimizers.find((o) => o.field === field || camel(o.field) === field);
  if (cls) {
    optimizer = cls.field;
    optimizerValues = byName ? defaultValues(cat, cls) : valuesFromJson(cat, cls, (config ?? {}) as Record<string, unknown>);
  }
  const loss = (json.loss ?? {}) as Record<string, unknown>;
  return {
    optimizer,
    optimizerValues,
    loss: typeof loss.name === "string" ? loss.name : "",
    fromLogits: key(loss, "from_logits") === true,
    metrics: Array.isArray(json.metrics) ? json.metrics.map(String) : [],
  };
}

