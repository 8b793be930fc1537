// The editor's state in one immutable object, so that React renders from a snapshot and the
// server sync (sync.ts) reads the same graph the user sees.
import { useSyncExternalStore } from "react";
import type { ObjectKind, Values } from "./catalogue";
import type { Catalogue } from "./gen/kiln/v1/catalogue_pb";
import type { DatasetInfo } from "./gen/kiln/v1/data_pb";
import type { ModelInfo, TensorInfo } from "./gen/kiln/v1/model_pb";

// An output socket of a card: output `output` of card `card` ("id" or "id:k" in a definition).
export interface Port {
  card: string;
  output: number;
}

// "object": an initializer, regularizer or constraint card, wired into a layer's socket of
// its kind; it has no tensors and nothing on the server of its own.
export type CardKind = "input" | "layer" | "call" | "object";

export interface Card {
  id: string; // the node id of a saved definition
  kind: CardKind;
  className: string; // catalogue ClassInfo.class_name; a call card: its source's
  values: Values;
  callOf?: string; // call cards: the card whose layer instance they call again
  inputs: Port[]; // in call order (Concatenate's order matters)
  objectKind?: ObjectKind; // object cards: the catalogue list their class is in
  links?: Record<string, string>; // layer cards: an object argument -> the object card wired in
  position: { x: number; y: number }; // where the card first appears
}

// What the server made of a card: the request it answered (sig), the layer and tensors it
// created, or its error for that request.
export interface Live {
  sig?: string;
  layer?: string;
  outputs: TensorInfo[];
  params?: bigint;
  busy?: boolean;
  waiting?: string; // why the card is not on the server yet
  errorText?: string; // a server error that names no field or socket of the card
  fieldErrors: Record<string, string>;
  inputErrors: Record<number, string>;
}

export interface Status {
  text: string;
  error: boolean;
}

// The compile panel; saved with a definition's `compile`.
export interface CompileState {
  optimizer: string; // an optimizer class's oneof field ("adam")
  optimizerValues: Values;
  loss: string; // "" until chosen: Keras has no default loss
  fromLogits: boolean;
  metrics: string[];
}

export interface AppState {
  catalogue?: Catalogue;
  sessionId?: string;
  cards: Card[];
  live: Record<string, Live>;
  selected?: string; // the card new cards are connected to
  status: Status;
  models: ModelInfo[];
  modelName: string; // the name CreateModel and DefineModel give
  modelInputs?: string[]; // card ids; unset: every input card
  modelOutputs?: string[]; // ports ("id", "id:1"); unset: every output no card reads
  compile?: CompileState;
  model: string; // the model the panels act on
  modelInfo?: ModelInfo;
  datasets: DatasetInfo[];
  connecting?: ObjectKind; // while an object card's wire is dragged: the sockets it fits open
}

type Listener = () => void;
let state: AppState = {
  cards: [],
  live: {},
  status: { text: "Connecting…", error: false },
  models: [],
  modelName: "model",
  model: "",
  datasets: [],
};
const listeners = new Set<Listener>();

export function getState(): AppState {
  return state;
}

export function setState(update: (s: AppState) => AppState): void {
  state = update(state);
  for (const l of listeners) l();
}

export function subscribe(l: Listener): () => void {
  listeners.add(l);
  return () => listeners.delete(l);
}

// Selectors must return values already in the state (or primitives): a fresh object per call
// would re-render forever.
export function useAppState<T>(select: (s: AppState) => T): T {
  return useSyncExternalStore(subscribe, () => select(state));
}

export const emptyLive: Live = { outputs: [], fieldErrors: {}, inputErrors: {} };

export function setLive(id: string, update: (l: Live) => Live): void {
  setState((s) => ({ ...s, live: { ...s.live, [id]: update(s.live[id] ?? emptyLive) } }));
}

export function setStatus(text: string, error = false): void {
  setState((s) => ({ ...s, status: { text, error } }));
}

export function cardById(s: AppState, id: string): Card | undefined {
  return s.cards.find((c) => c.id === id);
}
