// Model-level calls the panels and the top bar make: create, define, draw, compile, import,
// export.
// Each reports to the status bar and puts field errors where they belong.
import { fromJson, toJson, type JsonValue } from "@bufbuild/protobuf";
import { describeError, kiln, toApiError, type ApiError } from "./client";
import { cardTarget, compileTarget, definitionNode } from "./fieldpaths";
import { KerasFormat, ModelDefinitionSchema } from "./gen/kiln/v1/model_pb";
import { CompileConfigSchema } from "./gen/kiln/v1/training_pb";
import { compileJson, DefinitionError, loadDefinition, toDefinition } from "./definition";
import { modelInputs, modelOutputs, parsePort } from "./graph";
import { formatCount } from "./components/Cards";
import { getState, setLive, setStatus } from "./store";
import { refreshModelInfo, refreshModels } from "./sync";

export function fail(what: string, e: unknown): ApiError {
  const err = toApiError(e);
  setStatus(`${what}: ${describeError(err)}`, true);
  return err;
}

function markDefinitionError(e: DefinitionError): void {
  if (e.card === "compile") setStatus(`compile.${e.field}: ${e.message}`, true);
  else {
    setLive(e.card, (l) => ({ ...l, fieldErrors: { ...l.fieldErrors, [e.field]: e.message } }));
    setStatus(e.message, true);
  }
}

// The definition the editor would save, or undefined (with the error shown) when a field does
// not parse.
export function currentDefinition(): ReturnType<typeof toDefinition> | undefined {
  try {
    return toDefinition(getState());
  } catch (e) {
    if (e instanceof DefinitionError) markDefinitionError(e);
    else setStatus(String(e), true);
    return undefined;
  }
}

// DefineModel names nodes by index (definition.nodes[4].layer.dense.units); `order` gives the
// card of each index.
function placeDefinitionErrors(err: ApiError, order: string[]): void {
  for (const v of err.fieldViolations) {
    const n = definitionNode(v.field);
    const card = n && order[n.node];
    if (!card || !n) continue;
    const t = cardTarget(n.rest);
    setLive(card, (l) => ({
      ...l,
      fieldErrors: t?.arg ? { ...l.fieldErrors, [t.arg]: v.description } : l.fieldErrors,
      inputErrors: t?.input !== undefined ? { ...l.inputErrors, [t.input]: v.description } : l.inputErrors,
      errorText: t ? l.errorText : `${v.field}: ${v.description}`,
    }));
  }
}

export async function defineModel(): Promise<void> {
  const s = getState();
  const def = currentDefinition();
  if (!def || !s.sessionId) return;
  try {
    const definition = fromJson(ModelDefinitionSchema, def.json as JsonValue);
    const info = await kiln.models.defineModel({ sessionId: s.sessionId, definition, replace: true });
    // The model list first: the status then says the model is there to act on.
    await refreshModels(info.name);
    setStatus(`Defined model ${info.name}: ${formatCount(info.totalParams)} parameters${info.compiled ? ", compiled" : ""}`);
  } catch (e) {
    const err = fail("DefineModel", e);
    placeDefinitionErrors(err, def.order);
  }
}

function tensorOf(port: string): bigint | undefined {
  const p = parsePort(port);
  return getState().live[p.card]?.outputs[p.output]?.id;
}

// CreateModel over the live session graph: the chosen input cards and output sockets' tensors.
export async function createModel(): Promise<void> {
  const s = getState();
  if (!s.sessionId) return;
  const ins = modelInputs(s);
  const outs = modelOutputs(s);
  const missing = [...ins, ...outs].filter((p) => tensorOf(p) === undefined);
  if (missing.length) {
    setStatus(`Not on the server yet: ${missing.join(", ")} (connect and fix those cards first)`, true);
    return;
  }
  if (!ins.length || !outs.length) {
    setStatus("A model needs at least one input card and one output", true);
    return;
  }
  try {
    // CreateModel has no replace: a model of the same name is deleted first, as re-saving expects.
    if (s.models.some((m) => m.name === s.modelName)) {
      await kiln.models.deleteModel({ sessionId: s.sessionId, name: s.modelName });
    }
    const info = await kiln.models.createModel({
      sessionId: s.sessionId,
      name: s.modelName,
      inputs: ins.map((p) => tensorOf(p)!),
      outputs: outs.map((p) => tensorOf(p)!),
    });
    await refreshModels(info.name);
    setStatus(`Created model ${info.name}: ${formatCount(info.totalParams)} parameters`);
  } catch (e) {
    const err = fail("CreateModel", e);
    // inputs[i] / outputs[i] name the chosen sockets.
    for (const v of err.fieldViolations) {
      const m = /^(inputs|outputs)\[(\d+)\]/.exec(v.field);
      const port = m ? (m[1] === "inputs" ? ins : outs)[Number(m[2])] : undefined;
      if (port) setStatus(`CreateModel: ${port}: ${v.description}`, true);
    }
    await refreshModels();
  }
}

// Compile errors by field of the compile panel ("learning_rate", "loss", "metrics").
export async function compileModel(): Promise<Record<string, string> | undefined> {
  const s = getState();
  if (!s.sessionId || !s.model) {
    setStatus("Choose or create a model first", true);
    return undefined;
  }
  let config: JsonValue;
  try {
    const json = compileJson(s);
    if (!json) {
      setStatus("Choose a loss first", true);
      return { loss: "required" };
    }
    config = json as JsonValue;
  } catch (e) {
    if (e instanceof DefinitionError) return { [e.field]: e.message };
    throw e;
  }
  try {
    const info = await kiln.models.compile({ sessionId: s.sessionId, model: s.model, config: fromJson(CompileConfigSchema, config) });
    setStatus(`Compiled ${info.name}`);
    await refreshModelInfo();
    return {};
  } catch (e) {
    const err = fail("Compile", e);
    const errors: Record<string, string> = {};
    for (const v of err.fieldViolations) {
      const t = compileTarget(v.field);
      if (t) errors[t] = v.description;
    }
    return errors;
  }
}

export async function importModel(file: File, name: string): Promise<void> {
  const s = getState();
  if (!s.sessionId) return;
  const weights = file.name.endsWith(".weights.h5") || file.name.endsWith(".h5");
  if (weights && !s.model) {
    setStatus("Weights go into an existing model: choose one first", true);
    return;
  }
  try {
    const data = new Uint8Array(await file.arrayBuffer());
    const info = await kiln.models.importModel({
      sessionId: s.sessionId,
      name: weights ? s.model : name,
      format: weights ? KerasFormat.WEIGHTS : KerasFormat.UNSPECIFIED,
      source: { case: "data", value: data },
      replace: !weights,
    });
    await refreshModels(info.name);
    setStatus(`Imported ${file.name} as ${info.name}: ${formatCount(info.totalParams)} parameters`);
  } catch (e) {
    fail(`ImportModel ${file.name}`, e);
  }
}

// The current model as cards (an imported Keras model too): its definition from GetModel
// replaces the canvas, as Load JSON does, and the cards are built live.
export async function drawModel(): Promise<void> {
  const s = getState();
  if (!s.sessionId || !s.model) {
    setStatus("Choose a model to draw", true);
    return;
  }
  try {
    const info = await kiln.models.getModel({ sessionId: s.sessionId, name: s.model, includeDefinition: true });
    const definition = info.definition;
    if (!definition) throw new Error("the server sent no definition");
    loadDefinition(toJson(ModelDefinitionSchema, definition, { useProtoFieldName: true }) as Record<string, unknown>);
    setStatus(`Drew model ${info.name} as ${definition.nodes.length} cards`);
  } catch (e) {
    fail(`Draw ${s.model}`, e);
  }
}

// ExportModel streams the file in chunks; they are joined and offered as a download.
export async function exportModel(format: KerasFormat): Promise<void> {
  const s = getState();
  if (!s.sessionId || !s.model) {
    setStatus("Choose a model to export", true);
    return;
  }
  try {
    const parts: Uint8Array<ArrayBuffer>[] = [];
    let fileName = `${s.model}`;
    for await (const chunk of kiln.models.exportModel({ sessionId: s.sessionId, model: s.model, format })) {
      parts.push(new Uint8Array(chunk.data));
      if (chunk.fileName) fileName = chunk.fileName;
    }
    const type = format === KerasFormat.JSON || format === KerasFormat.UNSPECIFIED ? "application/json" : "application/octet-stream";
    download(new Blob(parts, { type }), fileName);
    setStatus(`Exported ${fileName} (${formatCount(BigInt(parts.reduce((n, p) => n + p.length, 0)))} bytes)`);
  } catch (e) {
    fail("ExportModel", e);
  }
}

export function download(blob: Blob, fileName: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = fileName;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
