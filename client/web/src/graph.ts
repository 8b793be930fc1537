// The card graph: adding, wiring and removing cards (layer inputs and object sockets), and its
// order. definition.ts turns it into a DefineModel definition and back.
import {
  defaultValues,
  inputRange,
  layerByClass,
  objectKind,
  outputCount,
  type FieldValue,
  type ObjectKind,
  type Values,
} from "./catalogue";
import type { ArgumentInfo, Catalogue, ClassInfo } from "./gen/kiln/v1/catalogue_pb";
import { getState, setState, type AppState, type Card, type CardKind, type Port } from "./store";

export function portName(p: Port): string {
  return p.output === 0 ? p.card : `${p.card}:${p.output}`;
}

export function parsePort(name: string): Port {
  const m = /^(.*):(\d+)$/.exec(name);
  return m ? { card: m[1], output: Number(m[2]) } : { card: name, output: 0 };
}

// Keras-style ids: dense, dense_1, dense_2, ...
function uniqueId(cards: Card[], base: string): string {
  const taken = new Set(cards.map((c) => c.id));
  if (!taken.has(base)) return base;
  for (let i = 1; ; i++) if (!taken.has(`${base}_${i}`)) return `${base}_${i}`;
}

export function classOf(cat: Catalogue, card: Card): ClassInfo | undefined {
  if (card.kind === "object") return card.objectKind && cat[card.objectKind].find((c) => c.className === card.className);
  return layerByClass(cat, card.className);
}

export function inputsAllowed(cat: Catalogue, card: Card): { min: number; max: number } {
  const cls = classOf(cat, card);
  if (!cls || card.kind === "object") return { min: 0, max: 0 };
  return inputRange(cls, card.kind === "input");
}

// Tensor outputs: an object card has none (its wire goes to a socket, not to a layer's input).
export function outputsOf(cat: Catalogue, card: Card): number {
  if (card.kind === "object") return 0;
  const cls = classOf(cat, card);
  return cls ? outputCount(cls) : 1;
}

// A card's initializer, regularizer and constraint arguments: the sockets object cards wire into.
export function objectSockets(cat: Catalogue, card: Card): ArgumentInfo[] {
  if (card.kind !== "layer" && card.kind !== "input") return [];
  return classOf(cat, card)?.arguments.filter((a) => objectKind(a) !== undefined) ?? [];
}

// The card's field values with each wired socket taking the value of the object card wired in:
// what its request and its definition node carry.
export function resolvedValues(s: AppState, card: Card): Values {
  if (!card.links) return card.values;
  const values = { ...card.values };
  for (const [arg, objectId] of Object.entries(card.links)) {
    const obj = s.cards.find((c) => c.id === objectId);
    const cls = obj && s.catalogue && classOf(s.catalogue, obj);
    if (obj && cls) values[arg] = { choice: cls.field, values: obj.values };
  }
  return values;
}

// A new card below the selected one, wired to it when it takes inputs, as appending to a
// Sequential model would.
export function addCard(className: string, position?: { x: number; y: number }): string | undefined {
  const s = getState();
  const cat = s.catalogue;
  const cls = cat && layerByClass(cat, className);
  if (!cat || !cls) return undefined;
  const kind: CardKind = cls === cat.input ? "input" : "layer";
  const id = uniqueId(s.cards, kind === "input" || !cls.field ? "input" : cls.field);
  const from = s.cards.find((c) => c.id === s.selected && c.kind !== "object"); // objects have no tensors
  const pos = position ?? nextPosition(s, from);
  const card: Card = { id, kind, className, values: defaultValues(cat, cls), inputs: [], position: pos };
  if (from && kind === "layer") card.inputs = [{ card: from.id, output: 0 }];
  setState((st) => ({ ...st, cards: [...st.cards, card], selected: id }));
  return id;
}

// An initializer, regularizer or constraint card. With a layer card selected it is wired into
// that card's first free socket of its kind (kernel_initializer before bias_initializer).
export function addObjectCard(kind: ObjectKind, className: string, position?: { x: number; y: number }): string | undefined {
  const s = getState();
  const cat = s.catalogue;
  const cls = cat?.[kind].find((c) => c.className === className);
  if (!cat || !cls) return undefined;
  const id = uniqueId(s.cards, cls.field);
  const target = s.selected ? s.cards.find((c) => c.id === s.selected) : undefined;
  const socket = target && objectSockets(cat, target).find((a) => objectKind(a) === kind && !target.links?.[a.name]);
  const pos = position ?? belowCard(s, target);
  const card: Card = { id, kind: "object", objectKind: kind, className, values: defaultValues(cat, cls), inputs: [], position: pos };
  setState((st) => ({ ...st, cards: [...st.cards, card] }));
  if (target && socket) link(id, target.id, socket.name);
  return id;
}

export function canLink(s: AppState, objectId: string, cardId: string, arg: string): string | undefined {
  const cat = s.catalogue;
  const obj = s.cards.find((c) => c.id === objectId);
  const card = s.cards.find((c) => c.id === cardId);
  if (!cat || !obj || obj.kind !== "object" || !card) return "no such card";
  const socket = objectSockets(cat, card).find((a) => a.name === arg);
  if (!socket) return `${cardId} has no socket ${arg}`;
  if (objectKind(socket) !== obj.objectKind) return `${arg} takes ${objectKind(socket)}, not ${obj.objectKind}`;
  return undefined;
}

// Wires an object card into a socket (replacing what the socket held).
export function link(objectId: string, cardId: string, arg: string): string | undefined {
  const why = canLink(getState(), objectId, cardId, arg);
  if (why) return why;
  setState((st) => ({
    ...st,
    cards: st.cards.map((c) => (c.id === cardId ? { ...c, links: { ...c.links, [arg]: objectId } } : c)),
  }));
  return undefined;
}

// Takes the wire out of a socket. The socket keeps the object's value, so the layer does not
// change under the user; its field then edits that value in place.
export function unlink(cardId: string, arg: string): void {
  setState((st) => ({ ...st, cards: st.cards.map((c) => (c.id === cardId ? withoutLink(st, c, arg) : c)) }));
}

function withoutLink(s: AppState, card: Card, arg: string): Card {
  if (!card.links?.[arg]) return card;
  const { [arg]: _gone, ...links } = card.links;
  return { ...card, values: { ...card.values, [arg]: resolvedValues(s, card)[arg] }, links };
}

// The sockets an object card is wired into, as "card.argument".
export function linksOf(cards: Card[], objectId: string): { card: string; arg: string }[] {
  return cards.flatMap((c) =>
    Object.entries(c.links ?? {})
      .filter(([, o]) => o === objectId)
      .map(([arg]) => ({ card: c.id, arg })),
  );
}

// A card that calls another card's layer instance again: Keras's shared layers.
export function addCallCard(sourceId: string): string | undefined {
  const s = getState();
  const source = s.cards.find((c) => c.id === sourceId);
  if (!source || source.kind !== "layer") return undefined;
  const id = uniqueId(s.cards, `${sourceId}_call`);
  const card: Card = {
    id,
    kind: "call",
    className: source.className,
    values: {},
    callOf: sourceId,
    inputs: [],
    position: { x: source.position.x + 300, y: source.position.y },
  };
  setState((st) => ({ ...st, cards: [...st.cards, card], selected: id }));
  return id;
}

// Below the card an object card serves (cards are at most about 480 high with their fields
// folded), in a row to the right of the object cards already there.
function belowCard(s: AppState, target?: Card): { x: number; y: number } {
  const pos = target ? { x: target.position.x, y: target.position.y + 500 } : { x: 40, y: 40 };
  while (s.cards.some((c) => Math.abs(c.position.x - pos.x) < 250 && Math.abs(c.position.y - pos.y) < 200)) pos.x += 280;
  return pos;
}

// To the right of the card it reads (cards differ in height, not in width), below any card
// already there.
function nextPosition(s: AppState, from?: Card): { x: number; y: number } {
  const pos = from ? { x: from.position.x + 290, y: from.position.y } : { x: 40, y: 40 };
  const near = (c: Card) => Math.abs(c.position.x - pos.x) < 200 && Math.abs(c.position.y - pos.y) < 120;
  while (s.cards.some(near)) pos.y += 140;
  return pos;
}

// Removing a card removes its wires and the cards that call its layer; the sockets an object
// card was wired into keep its value.
export function removeCard(id: string): void {
  setState((s) => {
    const gone = new Set([id, ...s.cards.filter((c) => c.callOf === id).map((c) => c.id)]);
    const cards = s.cards
      .filter((c) => !gone.has(c.id))
      .map((c) => ({ ...c, inputs: c.inputs.filter((p) => !gone.has(p.card)) }))
      .map((c) => linksOf([c], id).reduce((card, l) => withoutLink(s, card, l.arg), c));
    const live = { ...s.live };
    for (const g of gone) delete live[g];
    return {
      ...s,
      cards,
      live,
      selected: s.selected && gone.has(s.selected) ? undefined : s.selected,
      modelInputs: s.modelInputs?.filter((c) => !gone.has(c)),
      modelOutputs: s.modelOutputs?.filter((p) => !gone.has(parsePort(p).card)),
    };
  });
}

export function setValue(id: string, arg: string, value: FieldValue): void {
  setState((s) => ({
    ...s,
    cards: s.cards.map((c) => (c.id === id ? { ...c, values: { ...c.values, [arg]: value } } : c)),
  }));
}

// An empty canvas (what the server's session holds stays: models, datasets, jobs).
export function clearCanvas(): void {
  setState((s) => ({ ...s, cards: [], live: {}, selected: undefined, modelInputs: undefined, modelOutputs: undefined }));
}

// Where the user dropped a dragged card: kept with the canvas (persist.ts) and in nothing else.
export function moveCard(id: string, position: { x: number; y: number }): void {
  setState((s) => ({ ...s, cards: s.cards.map((c) => (c.id === id ? { ...c, position } : c)) }));
}

export function select(id: string | undefined): void {
  if (getState().selected !== id) setState((s) => ({ ...s, selected: id }));
}

function dependencies(cards: Card[], card: Card): string[] {
  const deps = card.inputs.map((p) => p.card);
  if (card.callOf) deps.push(card.callOf);
  return deps.filter((d) => cards.some((c) => c.id === d));
}

// Whether `to` already feeds `from` (so that from -> to would close a loop).
export function wouldCycle(cards: Card[], from: string, to: string): boolean {
  if (from === to) return true;
  const stack = [from];
  const seen = new Set<string>();
  while (stack.length) {
    const id = stack.pop()!;
    if (id === to) return true;
    if (seen.has(id)) continue;
    seen.add(id);
    const c = cards.find((x) => x.id === id);
    if (c) stack.push(...dependencies(cards, c));
  }
  return false;
}

export function canConnect(s: AppState, from: Port, to: string): string | undefined {
  const cat = s.catalogue;
  const target = s.cards.find((c) => c.id === to);
  if (!cat || !target) return "no such card";
  if (s.cards.find((c) => c.id === from.card)?.kind === "object") return `${from.card} wires into a socket of its kind, not into an input`;
  if (inputsAllowed(cat, target).max === 0) return `${to} takes no inputs`;
  if (wouldCycle(s.cards, from.card, to)) return "that connection would make a cycle";
  return undefined;
}

export function connect(from: Port, to: string): string | undefined {
  const s = getState();
  const why = canConnect(s, from, to);
  if (why) return why;
  const cat = s.catalogue!;
  setState((st) => ({
    ...st,
    cards: st.cards.map((c) => {
      if (c.id !== to) return c;
      // A one-input card takes the new wire in place of the old one.
      const max = inputsAllowed(cat, c).max;
      const inputs = max === 1 ? [from] : c.inputs.length < max ? [...c.inputs, from] : c.inputs;
      return { ...c, inputs };
    }),
  }));
  return undefined;
}

export function disconnect(to: string, index: number): void {
  setState((s) => ({
    ...s,
    cards: s.cards.map((c) => (c.id === to ? { ...c, inputs: c.inputs.filter((_, i) => i !== index) } : c)),
  }));
}

// Cards so that every card comes after the cards it reads and calls (a definition's order).
export function topoOrder(cards: Card[]): Card[] {
  const done = new Set<string>();
  const out: Card[] = [];
  const visit = (c: Card, path: Set<string>) => {
    if (done.has(c.id) || path.has(c.id)) return;
    path.add(c.id);
    for (const d of dependencies(cards, c)) {
      const dc = cards.find((x) => x.id === d);
      if (dc) visit(dc, path);
    }
    path.delete(c.id);
    done.add(c.id);
    out.push(c);
  };
  for (const c of cards) visit(c, new Set());
  return out;
}

// Outputs no card reads: the model's outputs unless the user picks others.
export function openEnds(s: AppState): string[] {
  const read = new Set(s.cards.flatMap((c) => c.inputs.map(portName)));
  const cat = s.catalogue;
  const ends: string[] = [];
  for (const c of s.cards) {
    if (c.kind === "input") continue;
    const n = cat ? outputsOf(cat, c) : 1;
    for (let k = 0; k < n; k++) {
      const p = portName({ card: c.id, output: k });
      if (!read.has(p)) ends.push(p);
    }
  }
  return ends;
}

export function modelInputs(s: AppState): string[] {
  return s.modelInputs ?? s.cards.filter((c) => c.kind === "input").map((c) => c.id);
}

export function modelOutputs(s: AppState): string[] {
  return s.modelOutputs ?? openEnds(s);
}
