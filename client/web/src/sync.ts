// Keeps the server's session graph in step with the cards. Each card's request (AddInput,
// AddLayer or CallLayer, with its spec and its input tensor ids) has a signature; a card whose
// signature differs from the one the server last answered is sent again, in graph order, so
// that changing a field re-creates that layer and, through the new tensor ids, everything
// downstream. The session graph only grows: replaced layers stay there, unused.
import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import { kiln, newSessionId, setSessionHeader, toApiError, describeError } from "./client";
import { defaultValues, emitClass, inputRange, layerByClass } from "./catalogue";
import { cardErrors, splitPath } from "./fieldpaths";
import { InputSchema, LayerSpecSchema } from "./gen/kiln/v1/layers_pb";
import type { TensorInfo } from "./gen/kiln/v1/model_pb";
import { resolvedValues, topoOrder } from "./graph";
import {
  cardById,
  emptyLive,
  getState,
  setLive,
  setState,
  setStatus,
  subscribe,
  type AppState,
  type Card,
} from "./store";

interface Result {
  layer?: string;
  outputs: TensorInfo[];
  params?: bigint;
}

type Plan = { wait: string } | { sig: string; run: () => Promise<Result> };

// Live cards are sent without their `name`: a re-created layer would collide with the name its
// old instance keeps in the session. Names apply when the graph is defined or saved.
function withoutName(json: Record<string, unknown>): Record<string, unknown> {
  const { name: _omitted, ...rest } = json;
  return rest;
}

function plan(s: AppState, card: Card): Plan {
  const cat = s.catalogue!;
  const sessionId = s.sessionId!;
  if (card.kind === "call") {
    const source = card.callOf ? s.live[card.callOf] : undefined;
    if (!source?.layer) return { wait: `waiting for ${card.callOf}` };
  }
  const cls = layerByClass(cat, card.className);
  if (!cls) return { wait: `the server has no class ${card.className}` };

  const ids: bigint[] = [];
  for (const p of card.inputs) {
    const t = s.live[p.card]?.outputs[p.output];
    if (t?.id === undefined) return { wait: `waiting for ${p.card}` };
    ids.push(t.id);
  }
  const { min } = inputRange(cls, card.kind === "input");
  if (ids.length < min) {
    const more = min - ids.length;
    return { wait: `connect ${more} more input${more > 1 ? "s" : ""}` };
  }

  if (card.kind === "call") {
    const source = s.live[card.callOf!]!;
    const layer = source.layer!;
    return {
      sig: JSON.stringify(["call", layer, ids.map(String)]),
      run: async () => {
        const r = await kiln.models.callLayer({ sessionId, layer, inputs: ids });
        return { layer, outputs: r.outputs, params: source.params };
      },
    };
  }
  const e = emitClass(cat, cls, resolvedValues(s, card));
  if ("error" in e) return { wait: "fix the marked fields" };
  const json = withoutName(e.json);
  if (card.kind === "input") {
    return {
      sig: JSON.stringify(["input", json]),
      run: async () => {
        const t = await kiln.models.addInput({ sessionId, input: fromJson(InputSchema, json as JsonValue) });
        return { outputs: [t] };
      },
    };
  }
  const spec = { [cls.field]: json };
  return {
    sig: JSON.stringify(["layer", spec, ids.map(String)]),
    run: async () => {
      const r = await kiln.models.addLayer({ sessionId, spec: fromJson(LayerSpecSchema, spec as JsonValue), inputs: ids });
      return { layer: r.layer?.name, outputs: r.outputs, params: r.layer?.params };
    },
  };
}

let running = false;
let again = false;

async function runSync(): Promise<void> {
  if (running) {
    again = true;
    return;
  }
  running = true;
  try {
    do {
      again = false;
      for (const { id } of topoOrder(getState().cards)) {
        if (again) break; // the graph changed: start over from its new order
        await syncCard(id);
      }
    } while (again);
  } finally {
    running = false;
  }
}

async function syncCard(id: string): Promise<void> {
  const s = getState();
  const card = cardById(s, id);
  // An object card has nothing on the server: the layers it is wired into carry its value.
  if (!card || card.kind === "object" || !s.catalogue || !s.sessionId) return;
  const p = plan(s, card);
  const live = s.live[id] ?? emptyLive;
  if ("wait" in p) {
    if (live.sig !== undefined || live.waiting !== p.wait || live.busy) setLive(id, () => ({ ...emptyLive, waiting: p.wait }));
    return;
  }
  if (live.sig === p.sig) return;
  setLive(id, (l) => ({ ...l, busy: true, waiting: undefined }));
  try {
    const r = await p.run();
    if (cardById(getState(), id)) setLive(id, () => ({ ...emptyLive, sig: p.sig, ...r }));
  } catch (e) {
    const err = toApiError(e);
    const placed = cardErrors(err, splitPath);
    if (cardById(getState(), id)) {
      setLive(id, () => ({
        ...emptyLive,
        sig: p.sig,
        fieldErrors: placed.fieldErrors,
        inputErrors: placed.inputErrors,
        errorText: placed.unplaced.length ? `${err.code}: ${placed.unplaced.join("; ")}` : undefined,
      }));
    }
    if (err.code === "unauthenticated" || err.code === "unavailable") setStatus(describeError(err), true);
  }
}

let timer: ReturnType<typeof setTimeout> | undefined;
export function scheduleSync(delayMs = 0): void {
  clearTimeout(timer);
  timer = setTimeout(() => void runSync(), delayMs);
}

// Typing in a field changes the cards on every key; wait for a pause before calling the server.
let lastCards = getState().cards;
subscribe(() => {
  const cards = getState().cards;
  if (cards !== lastCards) {
    lastCards = cards;
    scheduleSync(350);
  }
});

// Loads the catalogue and creates the session, then syncs whatever cards exist.
export async function start(): Promise<void> {
  try {
    const catalogue = await kiln.catalogue.describeCatalogue({});
    const opt = catalogue.optimizers.find((o) => o.field === "adam") ?? catalogue.optimizers[0];
    setState((s) => ({
      ...s,
      catalogue,
      compile: s.compile ?? {
        optimizer: opt?.field ?? "",
        optimizerValues: opt ? defaultValues(catalogue, opt) : {},
        loss: "",
        fromLogits: false,
        metrics: [],
      },
    }));
    await newSession();
  } catch (e) {
    const err = toApiError(e);
    const hint = err.code === "unauthenticated" ? " (enter an API token above)" : "";
    setStatus(`Could not start: ${describeError(err)}${hint}`, true);
  }
}

export async function newSession(): Promise<void> {
  const id = newSessionId();
  setSessionHeader(id);
  const session = await kiln.sessions.createSession({ name: "web editor", sessionId: id });
  // Every card must be sent again: the new session has none of the old tensors.
  setState((s) => ({ ...s, sessionId: session.id, live: {}, models: [], model: "", modelInfo: undefined, datasets: [] }));
  setStatus(`Session ${session.id} ready`);
  scheduleSync();
  await Promise.all([refreshModels(), refreshDatasets()]);
}

export async function refreshModels(select?: string): Promise<void> {
  const sessionId = getState().sessionId;
  if (!sessionId) return;
  const r = await kiln.models.listModels({ sessionId });
  setState((s) => {
    const model = select ?? (r.models.some((m) => m.name === s.model) ? s.model : (r.models[0]?.name ?? ""));
    return { ...s, models: r.models, model };
  });
  await refreshModelInfo();
}

export async function refreshModelInfo(): Promise<void> {
  const { sessionId, model } = getState();
  if (!sessionId || !model) {
    setState((s) => ({ ...s, modelInfo: undefined }));
    return;
  }
  const info = await kiln.models.getModel({ sessionId, name: model });
  setState((s) => ({ ...s, modelInfo: s.model === info.name ? info : s.modelInfo }));
}

export async function refreshDatasets(): Promise<void> {
  const sessionId = getState().sessionId;
  if (!sessionId) return;
  const r = await kiln.data.listDatasets({ sessionId });
  setState((s) => ({ ...s, datasets: r.datasets }));
}
