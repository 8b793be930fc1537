// Turns the server's catalogue into card fields: what each argument's widget holds, its Keras
// default, and the JSON it contributes to a layer spec. Nothing here names a layer class, so a
// class the server gains appears in the editor without a change.
import { ArgumentType, type ArgumentInfo, type Catalogue, type ClassInfo } from "./gen/kiln/v1/catalogue_pb";

// What a widget holds: text as typed (numbers and lists too, so that a half-typed value is not
// lost), a checkbox's state, or an object argument's chosen class with that class's fields.
export type FieldValue = string | boolean | ObjectValue;
export interface ObjectValue {
  choice: string; // the class's oneof field ("he_normal"); "": none
  values: Record<string, FieldValue>;
}
export type Values = Record<string, FieldValue>;

// The catalogue lists of classes that are arguments of layers, not layers.
export const OBJECT_KINDS = ["initializers", "regularizers", "constraints"] as const;
export type ObjectKind = (typeof OBJECT_KINDS)[number];

export function objectKind(arg: ArgumentInfo): ObjectKind | undefined {
  switch (arg.type) {
    case ArgumentType.INITIALIZER:
      return "initializers";
    case ArgumentType.REGULARIZER:
      return "regularizers";
    case ArgumentType.CONSTRAINT:
      return "constraints";
    default:
      return undefined;
  }
}

export function isObjectValue(v: FieldValue | undefined): v is ObjectValue {
  return typeof v === "object" && v !== null;
}

function parseDefault(arg: ArgumentInfo): unknown {
  if (!arg.defaultJson) return undefined;
  try {
    return JSON.parse(arg.defaultJson);
  } catch {
    return undefined;
  }
}

function flatten(v: unknown): unknown[] {
  return Array.isArray(v) ? v.flatMap(flatten) : [v];
}

// The class an identifier names ("glorot_uniform", "GlorotUniform", "zero"), as Keras matches
// identifiers: case-insensitively.
export function classByIdentifier(classes: ClassInfo[], id: string): ClassInfo | undefined {
  const lower = id.toLowerCase();
  return classes.find(
    (c) => c.field === id || c.identifiers.some((i) => i.toLowerCase() === lower),
  );
}

// The Keras string form of a class: its snake_case identifier ("l1l2" for L1L2: Keras 3's
// zero-penalty name, matching the class defaults the card shows).
export function stringForm(cls: ClassInfo): string {
  return cls.identifiers.find((i) => i === i.toLowerCase()) ?? cls.className;
}

export function defaultValues(cat: Catalogue, cls: ClassInfo): Values {
  const values: Values = {};
  for (const arg of cls.arguments) values[arg.name] = defaultValue(cat, arg);
  return values;
}

export function defaultValue(cat: Catalogue, arg: ArgumentInfo): FieldValue {
  return jsonToValue(cat, arg, parseDefault(arg));
}

// A JSON value of the argument (a default, or a value from a loaded definition) as a widget
// value. Accepts the protobuf JSON forms too: int64 as strings, objects as {"name": ...} or
// {"heNormal": {...}}.
export function jsonToValue(cat: Catalogue, arg: ArgumentInfo, json: unknown): FieldValue {
  const kind = objectKind(arg);
  if (kind) {
    const classes = cat[kind];
    if (typeof json === "string") {
      const cls = classByIdentifier(classes, json);
      return { choice: cls?.field ?? "", values: cls ? defaultValues(cat, cls) : {} };
    }
    if (json && typeof json === "object") {
      const [key, inner] = Object.entries(json as Record<string, unknown>)[0] ?? [];
      if (key === "name" && typeof inner === "string") return jsonToValue(cat, arg, inner);
      const cls = classes.find((c) => c.field === key || camel(c.field) === key);
      if (!cls) return { choice: "", values: {} };
      return { choice: cls.field, values: valuesFromJson(cat, cls, (inner ?? {}) as Record<string, unknown>) };
    }
    return { choice: "", values: {} };
  }
  if (arg.type === ArgumentType.BOOL) return json === true;
  if (json === undefined || json === null) return "";
  if (arg.type === ArgumentType.INT_LIST) return flatten(json).map(String).join(", ");
  return String(json);
}

export function camel(snake: string): string {
  return snake.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

// A class's widget values from its JSON config (snake_case or lowerCamel keys); arguments the
// config does not set keep their Keras defaults.
export function valuesFromJson(cat: Catalogue, cls: ClassInfo, json: Record<string, unknown>): Values {
  const values = defaultValues(cat, cls);
  for (const arg of cls.arguments) {
    const v = json[arg.name] ?? json[arg.jsonName];
    if (v !== undefined) values[arg.name] = jsonToValue(cat, arg, v);
  }
  return values;
}

export type Emitted = { set: false } | { set: true; json: unknown } | { error: string };

function isInt(s: string): boolean {
  return /^[-+]?\d+$/.test(s);
}

// The JSON a widget value contributes. Values equal to the Keras default are left out, so a
// saved definition reads like hand-written Keras and stays valid if a default ever changes.
export function emit(cat: Catalogue, arg: ArgumentInfo, value: FieldValue | undefined): Emitted {
  const v = value ?? defaultValue(cat, arg);
  const e = emitAny(cat, arg, v);
  if ("error" in e || !e.set || arg.required) return e;
  const d = emitAny(cat, arg, defaultValue(cat, arg));
  if ("set" in d && d.set && JSON.stringify(d.json) === JSON.stringify(e.json)) return { set: false };
  return e;
}

function emitAny(cat: Catalogue, arg: ArgumentInfo, v: FieldValue): Emitted {
  const kind = objectKind(arg);
  if (kind) {
    if (!isObjectValue(v) || !v.choice) return arg.required ? { error: "required" } : { set: false };
    const cls = cat[kind].find((c) => c.field === v.choice);
    if (!cls) return { error: `unknown ${kind} ${v.choice}` };
    const inner = emitClass(cat, cls, v.values);
    if ("error" in inner) return inner;
    // The string form while every argument is the class default; the class form otherwise.
    return Object.keys(inner.json).length === 0
      ? { set: true, json: { name: stringForm(cls) } }
      : { set: true, json: { [cls.field]: inner.json } };
  }
  if (arg.type === ArgumentType.BOOL) return { set: true, json: v === true };
  const s = typeof v === "string" ? v.trim() : "";
  if (s === "") return arg.required ? { error: "required" } : { set: false };
  switch (arg.type) {
    case ArgumentType.INT:
      return isInt(s) ? { set: true, json: Number(s) } : { error: "must be an integer" };
    case ArgumentType.FLOAT: {
      const n = Number(s);
      return Number.isFinite(n) ? { set: true, json: n } : { error: "must be a number" };
    }
    case ArgumentType.INT_LIST: {
      const parts = s.split(/[\s,()[\]]+/).filter((p) => p !== "");
      if (!parts.every(isInt)) return { error: "must be integers separated by commas" };
      return { set: true, json: parts.map(Number) };
    }
    default:
      return { set: true, json: s };
  }
}

// A class's config as JSON (only what differs from its defaults), or the first field's error.
export function emitClass(
  cat: Catalogue,
  cls: ClassInfo,
  values: Values,
): { json: Record<string, unknown> } | { error: string; field: string } {
  const json: Record<string, unknown> = {};
  for (const arg of cls.arguments) {
    const e = emit(cat, arg, values[arg.name]);
    if ("error" in e) return { error: e.error, field: arg.name };
    if (e.set) json[arg.name] = e.json;
  }
  return { json };
}

// Every field's client-side error (unparsable text, a missing required value).
export function valueErrors(cat: Catalogue, cls: ClassInfo, values: Values): Record<string, string> {
  const errors: Record<string, string> = {};
  for (const arg of cls.arguments) {
    const e = emit(cat, arg, values[arg.name]);
    if ("error" in e) errors[arg.name] = e.error;
  }
  return errors;
}

export function layerByClass(cat: Catalogue, className: string): ClassInfo | undefined {
  if (cat.input && cat.input.className === className) return cat.input;
  return cat.layers.find((c) => c.className === className);
}

// Layers by the Keras documentation's categories, in the order the server lists them.
export function layersByCategory(cat: Catalogue): [string, ClassInfo[]][] {
  const groups = new Map<string, ClassInfo[]>();
  for (const cls of cat.layers) {
    const list = groups.get(cls.category) ?? [];
    list.push(cls);
    groups.set(cls.category, list);
  }
  return [...groups];
}

// Sockets say 0 for "one" on called layers (options.proto); the input takes none.
export function inputRange(cls: ClassInfo, isInput: boolean): { min: number; max: number } {
  if (isInput) return { min: 0, max: 0 };
  const s = cls.sockets;
  const min = Math.max(1, s?.minInputs ?? 1);
  const max = s === undefined || s.maxInputs === 0 ? Math.max(1, min) : s.maxInputs < 0 ? Infinity : s.maxInputs;
  return { min, max };
}

export function outputCount(cls: ClassInfo): number {
  return Math.max(1, cls.sockets?.outputs ?? 1);
}
