#!/usr/bin/env bash
# Checks the manifests with `kubectl apply --dry-run=client` on a machine without a cluster:
# kubectl still needs the API server's discovery documents to map kinds to resources, so
# this serves them from a stub on 127.0.0.1 (schema validation needs the server's OpenAPI
# document, which the stub does not have: --validate=false).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'kill "${stub_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

cat > "$work/stub.py" <<'PY'
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

def res(name, kind, namespaced):
    return {"name": name, "singularName": "", "kind": kind, "namespaced": namespaced,
            "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]}

GROUPS = {
    "/api/v1": [res("namespaces", "Namespace", False), res("serviceaccounts", "ServiceAccount", True),
                res("configmaps", "ConfigMap", True), res("services", "Service", True),
                res("pods", "Pod", True), res("endpoints", "Endpoints", True), res("nodes", "Node", False)],
    "/apis/apps/v1": [res("statefulsets", "StatefulSet", True), res("deployments", "Deployment", True)],
    "/apis/rbac.authorization.k8s.io/v1": [res("clusterroles", "ClusterRole", False),
                                          res("clusterrolebindings", "ClusterRoleBinding", False),
                                          res("roles", "Role", True), res("rolebindings", "RoleBinding", True)],
}

class Stub(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        path = self.path.split("?")[0]
        if path == "/api":
            body = {"kind": "APIVersions", "versions": ["v1"]}
        elif path == "/apis":
            groups = []
            for prefix in GROUPS:
                if prefix.startswith("/apis/"):
                    group, version = prefix[len("/apis/"):].split("/")
                    gv = {"groupVersion": f"{group}/{version}", "version": version}
                    groups.append({"name": group, "versions": [gv], "preferredVersion": gv})
            body = {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
        elif path in GROUPS:
            gv = "v1" if path == "/api/v1" else path[len("/apis/"):]
            body = {"kind": "APIResourceList", "groupVersion": gv, "resources": GROUPS[path]}
        else:
            self.send_response(404)
            self.end_headers()
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

server = HTTPServer(("127.0.0.1", 0), Stub)
print(server.server_address[1], flush=True)
server.serve_forever()
PY

python3 "$work/stub.py" > "$work/port" &
stub_pid=$!
for _ in $(seq 50); do [ -s "$work/port" ] && break; sleep 0.1; done
port="$(head -1 "$work/port")"
cat > "$work/kubeconfig" <<KC
apiVersion: v1
kind: Config
current-context: stub
clusters: [{name: stub, cluster: {server: "http://127.0.0.1:$port"}}]
contexts: [{name: stub, context: {cluster: stub, user: stub}}]
users: [{name: stub, user: {}}]
KC
export KUBECONFIG="$work/kubeconfig"
for manifest in "$here"/*.yaml; do
    echo "== $(basename "$manifest")"
    kubectl apply --dry-run=client --validate=false --cache-dir "$work/cache" -f "$manifest"
done
