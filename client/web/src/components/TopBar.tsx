// The top bar: the session, the API token, and the graph's files (definition JSON; Keras files).
import { useRef, useState, type ReactNode } from "react";
import { currentDefinition, download, exportModel, importModel } from "../actions";
import { getToken, setToken } from "../client";
import { KerasFormat } from "../gen/kiln/v1/model_pb";
import { loadDefinition } from "../definition";
import { getState, setStatus, useAppState } from "../store";
import { newSession, start } from "../sync";

function TokenField() {
  const [token, setLocal] = useState(getToken());
  return (
    <form
      className="token"
      onSubmit={(e) => {
        e.preventDefault();
        setToken(token.trim());
        // A server with --auth_tokens_file refused everything so far: start over with the token.
        if (!getState().sessionId) void start();
        else setStatus(token ? "Token saved for this tab" : "Token cleared");
      }}
    >
      <label htmlFor="api-token">API token</label>
      <input id="api-token" type="password" autoComplete="off" value={token} onChange={(e) => setLocal(e.target.value)} data-testid="token-input" />
      <button type="submit">Use</button>
    </form>
  );
}

// A button that opens the file picker (a hidden file input) and hands over the chosen file.
function FileButton(props: { accept: string; testid: string; disabled?: boolean; title?: string; onFile: (f: File) => void; children: ReactNode }) {
  const input = useRef<HTMLInputElement>(null);
  return (
    <>
      <button type="button" onClick={() => input.current?.click()} disabled={props.disabled} data-testid={props.testid} title={props.title}>
        {props.children}
      </button>
      <input
        ref={input}
        type="file"
        accept={props.accept}
        hidden
        data-testid={`${props.testid}-file`}
        onChange={(e) => {
          const f = e.target.files?.[0];
          e.target.value = ""; // choosing the same file again still fires
          if (f) props.onFile(f);
        }}
      />
    </>
  );
}

export function TopBar() {
  const sessionId = useAppState((s) => s.sessionId);
  const modelName = useAppState((s) => s.modelName);
  const [format, setFormat] = useState<KerasFormat>(KerasFormat.JSON);

  const save = () => {
    const def = currentDefinition();
    if (!def) return;
    download(new Blob([JSON.stringify(def.json, null, 2) + "\n"], { type: "application/json" }), `${modelName || "model"}.json`);
    setStatus(`Saved ${modelName}.json (${def.order.length} nodes)`);
  };

  const load = async (file: File) => {
    try {
      loadDefinition(JSON.parse(await file.text()) as Record<string, unknown>);
      setStatus(`Loaded ${file.name}`);
    } catch (e) {
      setStatus(`Could not load ${file.name}: ${e instanceof Error ? e.message : String(e)}`, true);
    }
  };

  return (
    <header className="topbar">
      <h1>Kiln</h1>
      <span className="session" data-testid="session-id" title="This tab's session">
        {sessionId ?? "no session"}
      </span>
      <button type="button" onClick={() => void newSession().catch((e) => setStatus(String(e), true))} disabled={!sessionId}>
        New session
      </button>
      <span className="sep" />
      <button type="button" onClick={save} data-testid="save-definition">
        Save JSON
      </button>
      <FileButton accept=".json,application/json" testid="load-definition" onFile={(f) => void load(f)}>
        Load JSON
      </FileButton>
      <span className="sep" />
      <FileButton
        accept=".json,.keras,.h5"
        testid="import-keras"
        disabled={!sessionId}
        title="Keras model.to_json(), a .keras archive, or .weights.h5 into the current model"
        onFile={(f) => void importModel(f, "")}
      >
        Import Keras…
      </FileButton>
      <label htmlFor="export-format">Export as</label>
      <select id="export-format" value={format} onChange={(e) => setFormat(Number(e.target.value) as KerasFormat)}>
        <option value={KerasFormat.JSON}>Keras JSON</option>
        <option value={KerasFormat.KERAS}>.keras</option>
        <option value={KerasFormat.WEIGHTS}>.weights.h5</option>
      </select>
      <button type="button" onClick={() => void exportModel(format)} disabled={!sessionId} data-testid="export-keras">
        Export
      </button>
      <span className="sep grow" />
      <TokenField />
    </header>
  );
}
