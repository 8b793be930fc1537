// The status bar: the latest outcome, and any server error that belongs to no card or field.
import { useAppState } from "../store";

export function StatusBar() {
  const status = useAppState((s) => s.status);
  return (
    <footer className={`statusbar${status.error ? " error" : ""}`} role={status.error ? "alert" : "status"} data-testid="status-bar" data-error={status.error || undefined}>
      {status.text}
    </footer>
  );
}
