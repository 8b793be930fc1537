// The typed Kiln client: one Connect transport (JSON, so requests are readable in the browser's
// network panel) and one client per service.
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { BadRequestSchema } from "./gen/google/rpc/error_details_pb";
import {
  CatalogueService,
  DataService,
  InferenceService,
  JobService,
  ModelService,
  SessionService,
} from "./gen/kiln/v1/service_pb";

const TOKEN_KEY = "kiln.token";

// `?api=https://host:port` points a copy of the editor served elsewhere at a Kiln server whose
// --http_cors_origins allows it (the copy kiln-server serves may call only its own origin: its
// Content-Security-Policy says so). By default it talks to the server that served the page.
export function apiBaseUrl(): string {
  const override = new URLSearchParams(location.search).get("api");
  return (override ?? location.origin).replace(/\/+$/, "");
}

// Kept in sessionStorage so that a token survives reloads but not the tab.
export function getToken(): string {
  return sessionStorage.getItem(TOKEN_KEY) ?? "";
}
export function setToken(token: string): void {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

// x-kiln-session lets a load balancer that hashes it send every call of a session to one
// replica (README "Scaling out"); the session id is drawn here, before CreateSession.
let sessionHeader = "";
export function setSessionHeader(sessionId: string): void {
  sessionHeader = sessionId;
}

const headers: Interceptor = (next) => async (req) => {
  const token = getToken();
  if (token) req.header.set("authorization", `Bearer ${token}`);
  if (sessionHeader) req.header.set("x-kiln-session", sessionHeader);
  return next(req);
};

export interface Kiln {
  sessions: Client<typeof SessionService>;
  models: Client<typeof ModelService>;
  data: Client<typeof DataService>;
  jobs: Client<typeof JobService>;
  inference: Client<typeof InferenceService>;
  catalogue: Client<typeof CatalogueService>;
  baseUrl: string;
}

export function createKiln(baseUrl: string = apiBaseUrl()): Kiln {
  const transport = createConnectTransport({ baseUrl, useBinaryFormat: false, interceptors: [headers] });
  return {
    sessions: createClient(SessionService, transport),
    models: createClient(ModelService, transport),
    data: createClient(DataService, transport),
    jobs: createClient(JobService, transport),
    inference: createClient(InferenceService, transport),
    catalogue: createClient(CatalogueService, transport),
    baseUrl,
  };
}

export const kiln = createKiln();

export interface FieldViolation {
  field: string;
  description: string;
}
export interface ApiError {
  code: string; // "invalid_argument", as the Connect protocol spells codes
  message: string;
  fieldViolations: FieldViolation[];
}

function codeName(code: Code): string {
  return (Code[code] ?? "unknown").replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}

// Kiln names the request field at fault in a google.rpc.BadRequest detail, so that the editor
// can put the message on the card and field it belongs to.
export function toApiError(e: unknown): ApiError {
  const err = ConnectError.from(e);
  const fieldViolations = err
    .findDetails(BadRequestSchema)
    .flatMap((b) => b.fieldViolations.map((v) => ({ field: v.field, description: v.description })));
  return { code: codeName(err.code), message: err.rawMessage, fieldViolations };
}

export function describeError(e: ApiError): string {
  return `${e.code}: ${e.message}`;
}

// A session id as Kiln's clients draw them: "s-" and 32 lowercase hex digits.
export function newSessionId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return "s-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
