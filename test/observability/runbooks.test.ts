/**
 * Every alert links its runbook: `annotations.runbook_url` is `docs/runbooks.md#<anchor>`, the
 * anchor is a heading of docs/runbooks.md (GitHub's anchor of that heading), and the section says
 * what the alert means, what to check and what to do. No runbook section is left for an alert that
 * is gone. The alert on connections refused for capacity exists and reads the capacity refusals.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { parse as parseYaml } from "yaml";
import { REPO_ROOT } from "@chat/test-kit";
import { PROMETHEUS_DIR } from "./promql.ts";

interface Rule {
  alert?: string;
  expr: string;
  annotations?: Record<string, string>;
}

const rules = (parseYaml(fs.readFileSync(path.join(PROMETHEUS_DIR, "alerts.yml"), "utf8")) as { groups: { rules: Rule[] }[] }).groups
  .flatMap((g) => g.rules)
  .filter((r) => r.alert);
const runbooks = fs.readFileSync(path.join(REPO_ROOT, "docs/runbooks.md"), "utf8");

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function anchor(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, "").replace(/ /g, "-");
}

/** The level-2 sections of docs/runbooks.md by anchor. */
const sections = new Map<string, string>();
for (const part of runbooks.split(/^## /m).slice(1)) {
  const [heading = "", ...body] = part.split("\n");
  sections.set(anchor(heading), body.join("\n"));
}

test("every alert has a runbook_url into docs/runbooks.md whose section exists and says what to do", () => {
  assert.ok(rules.length >= 10, `only ${rules.length} alerts`);
  for (const r of rules) {
    const url = r.annotations?.runbook_url;
    assert.ok(url, `${r.alert} has no runbook_url`);
    const m = /^docs\/runbooks\.md#([a-z0-9_-]+)$/.exec(url);
    assert.ok(m, `${r.alert}: runbook_url ${url} is not docs/runbooks.md#<anchor>`);
    const section = sections.get(m[1]!);
    assert.ok(section !== undefined, `${r.alert}: docs/runbooks.md has no section #${m[1]} (it has ${[...sections.keys()].join(", ")})`);
    for (const part of ["**Means**", "**Check**", "**Do**"]) assert.ok(section.includes(part), `${r.alert}'s runbook lacks ${part}`);
  }
});

test("every runbook section belongs to an alert that exists", () => {
  const linked = new Set(rules.map((r) => r.annotations?.runbook_url?.split("#")[1]));
  for (const a of sections.keys()) assert.ok(linked.has(a), `docs/runbooks.md#${a} belongs to no alert of alerts.yml`);
});

test("an alert fires on connections refused for capacity (MAX_CONNECTIONS)", () => {
  const capacity = rules.filter((r) => /chat_connections_refused_total\{[^}]*reason="capacity"/.test(r.expr));
  assert.equal(capacity.length, 1, "one alert reads chat_connections_refused_total{reason=\"capacity\"}");
  assert.equal(capacity[0]!.alert, "ChatConnectionsRefusedCapacity");
});

test("the anchor function matches GitHub's for the headings used", () => {
  assert.equal(anchor("ChatNodeDown"), "chatnodedown");
  assert.equal(anchor("A Heading, with: punctuation"), "a-heading-with-punctuation");
});
