// Compiled with `tsc --strict` against the types openapi-typescript generates from
// docs/openapi.json (as schema.d.ts beside this file): what a portal written in TypeScript uses.
import type { components, operations, paths } from "./schema";

type Schemas = components["schemas"];
type Problem = Schemas["Problem"];
type ResultsPage =
  paths["/v1/projections/{run_id}/results"]["get"]["responses"][200]["content"]["application/json"];
type Latest =
  operations["latest_projection"]["responses"][200]["content"]["application/json"];
type Workforce = operations["area_workforce"]["responses"][200]["content"]["application/json"];
type SubmitJson =
  operations["submit_return"]["requestBody"]["content"]["application/json"];
type NotFound = operations["get_results"]["responses"][404]["content"]["application/problem+json"];
type Invalid = operations["submit_return"]["responses"][422]["content"]["application/problem+json"];

export function spread(page: ResultsPage): number[] {
  return page.items.map((row) => row.p90 - row.p10);
}

export function latestRun(latest: Latest): string {
  return `${latest.run.id}: ${latest.results.length} rows`;
}

export function careWorkers(workforce: Workforce): number {
  return workforce.roles
    .filter((role) => role.role_code === "care-worker")
    .reduce((sum, role) => sum + role.headcount, 0);
}

export const aReturn: SubmitJson = {
  as_at: "2025-03-31",
  lines: [
    {
      role_code: "care-worker",
      headcount: 40,
      fte_in_post: 32.5,
      vacant_fte: 4,
      starters_12m: 10,
      leavers_12m: 8,
      sickness_days_12m: 310,
      agency_fte: 1.5,
      bank_fte: 2,
      age_under_25: 6,
      age_25_34: 9,
      age_35_44: 8,
      age_45_54: 9,
      age_55_64: 6,
      age_65_plus: 2,
    },
  ],
};

export function describe(problem: Problem | NotFound | Invalid): string {
  const where = (problem.errors ?? []).map((e) => `${e.field ?? e.column ?? ""}: ${e.message}`);
  return [`${problem.status} ${problem.code} (${problem.type})`, problem.detail ?? "", ...where]
    .filter((part) => part !== "")
    .join("\n");
}

export const minimal: Problem = {
  type: "/problems/projection_not_found",
  title: "Not found",
  status: 404,
  code: "projection_not_found",
};

// The types are precise, not `any`: each line below must fail to compile.
// @ts-expect-error a percentile is a number
export const wrongNumber: Schemas["ProjectionResultRead"]["p50"] = "1506.2";
// @ts-expect-error a return line needs its headcount
export const missingHeadcount: Schemas["ReturnLineIn"] = { role_code: "care-worker" };
// @ts-expect-error a problem has a code
export const noCode: Problem = { type: "/problems/x", title: "Not found", status: 404 };
