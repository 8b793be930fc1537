// One argument's widget, chosen by the catalogue's argument type: text for numbers and tuples
// (so half-typed values survive), a select for allowed values, activations and
// initializer/regularizer/constraint names, a checkbox for booleans.
import {
  defaultValues,
  isObjectValue,
  objectKind,
  type FieldValue,
} from "../catalogue";
import { ArgumentType, type ArgumentInfo, type Catalogue } from "../gen/kiln/v1/catalogue_pb";

interface Props {
  cat: Catalogue;
  arg: ArgumentInfo;
  value: FieldValue | undefined;
  onChange: (v: FieldValue) => void;
  error?: string;
  idPrefix: string; // makes element ids unique on the page
  testPrefix?: string; // "field-" on cards; nested fields add "<arg>."
}

function rangeHint(arg: ArgumentInfo): string {
  const lo = arg.minimum !== undefined ? `${arg.exclusiveMinimum ? ">" : "≥"} ${arg.minimum}` : "";
  const hi = arg.maximum !== undefined ? `${arg.exclusiveMaximum ? "<" : "≤"} ${arg.maximum}` : "";
  return [lo, hi].filter(Boolean).join(", ");
}

function placeholder(arg: ArgumentInfo): string {
  if (arg.required) return "required";
  if (arg.defaultJson === "null") return "None";
  if (arg.type === ArgumentType.INT_LIST && arg.tuple > 1) return `1 or ${arg.tuple} values`;
  return "";
}

export function Field({ cat, arg, value, onChange, error, idPrefix, testPrefix = "field-" }: Props) {
  const id = `${idPrefix}-${arg.name}`;
  const errId = `${id}-error`;
  const test = `${testPrefix}${arg.name}`;
  const hint = [arg.doc, rangeHint(arg), arg.defaultJson ? `Keras default: ${arg.defaultJson}` : ""]
    .filter(Boolean)
    .join(" · ");
  const common = {
    id,
    "data-testid": test,
    "aria-invalid": error ? true : undefined,
    "aria-describedby": error ? errId : undefined,
    "aria-required": arg.required || undefined,
    title: hint,
  };
  const kind = objectKind(arg);
  let control;
  if (arg.type === ArgumentType.BOOL) {
    control = <input type="checkbox" {...common} checked={value === true} onChange={(e) => onChange(e.target.checked)} />;
  } else if (kind) {
    const v = isObjectValue(value) ? value : { choice: "", values: {} };
    const classes = cat[kind];
    const cls = classes.find((c) => c.field === v.choice);
    control = (
      <div className="object-field">
        <select
          {...common}
          value={v.choice}
          onChange={(e) => {
            const next = classes.find((c) => c.field === e.target.value);
            onChange({ choice: e.target.value, values: next ? defaultValues(cat, next) : {} });
          }}
        >
          <option value="">None</option>
          {classes.map((c) => (
            <option key={c.field} value={c.field} title={c.doc}>
              {c.field} ({c.className})
            </option>
          ))}
        </select>
        {cls && cls.arguments.length > 0 && (
          <div className="nested" role="group" aria-label={`${arg.name} ${cls.className} arguments`}>
            {cls.arguments.map((a) => (
              <Field
                key={a.name}
                cat={cat}
                arg={a}
                value={v.values[a.name]}
                onChange={(nv) => onChange({ choice: v.choice, values: { ...v.values, [a.name]: nv } })}
                idPrefix={id}
                testPrefix={`${test}.`}
              />
            ))}
          </div>
        )}
      </div>
    );
  } else if (arg.type === ArgumentType.ACTIVATION || arg.allowed.length > 0) {
    const options =
      arg.type === ArgumentType.ACTIVATION ? cat.activations.map((a) => ({ name: a.name, doc: a.doc })) : arg.allowed.map((a) => ({ name: a, doc: "" }));
    const s = typeof value === "string" ? value : "";
    control = (
      <select {...common} value={s} onChange={(e) => onChange(e.target.value)}>
        {(!arg.required || s === "") && <option value="">{arg.required ? "choose…" : "None"}</option>}
        {options.map((o) => (
          <option key={o.name} value={o.name} title={o.doc}>
            {o.name}
          </option>
        ))}
        {s !== "" && !options.some((o) => o.name === s) && <option value={s}>{s}</option>}
      </select>
    );
  } else {
    const numeric = arg.type === ArgumentType.INT || arg.type === ArgumentType.FLOAT || arg.type === ArgumentType.INT_LIST;
    control = (
      <input
        type="text"
        {...common}
        inputMode={numeric ? (arg.type === ArgumentType.FLOAT ? "decimal" : "numeric") : undefined}
        placeholder={placeholder(arg)}
        value={typeof value === "string" ? value : ""}
        onChange={(e) => onChange(e.target.value)}
        spellCheck={false}
        autoComplete="off"
      />
    );
  }
  return (
    <div className={`field${kind ? " object" : ""}${error ? " has-error" : ""}`} data-arg={arg.name}>
      <label htmlFor={id} title={hint}>
        {arg.name}
        {arg.required && (
          <span className="required" aria-hidden="true">
            *
          </span>
        )}
      </label>
      {control}
      {error && (
        <div className="field-error" id={errId} role="alert" data-testid={`field-error-${arg.name}`}>
          {error}
        </div>
      )}
    </div>
  );
}
