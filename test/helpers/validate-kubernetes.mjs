// Validates Kubernetes objects against the API's OpenAPI schemas (kubernetes-models, an ES
// module, hence a script of its own that test/kubernetes.test.ts runs with node). Reads a YAML
// stream on stdin; prints a JSON array of { kind, name, error } (empty when every object is valid).
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';

const problems = [];
for (const doc of parseAllDocuments(readFileSync(0, 'utf8'))) {
  const obj = doc.toJS();
  if (!obj) continue;
  const name = obj.metadata?.name;
  // apps/v1 → kubernetes-models/apps/v1/Deployment; v1 → kubernetes-models/v1/Service
  const path = `kubernetes-models/${obj.apiVersion}/${obj.kind}`;
  let Model;
  try {
    ({ [obj.kind]: Model } = await import(path));
  } catch (err) {
    problems.push({ kind: obj.kind, name, error: `no schema (${path}): ${err.message}` });
    continue;
  }
  try {
    new Model(obj).validate();
  } catch (err) {
    problems.push({ kind: obj.kind, name, error: err.message });
  }
}
process.stdout.write(JSON.stringify(problems));
