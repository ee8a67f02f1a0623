#!/usr/bin/env python3
"""Checks the deployment material against the code it deploys.

    python3 k8s/validate.py            (from the repository root; needs PyYAML)

- every YAML/JSON file under k8s/ and deploy/{grafana,prometheus,s3} parses;
- k8s/base/recvault.toml is a verbatim copy of pipeline-config/recvault.toml (kustomize cannot
  read files outside its directory, so the base carries a copy);
- the kustomizations render (`kubectl kustomize`, skipped when kubectl is missing;
  deploy/local/validate.sh puts the kubectl of deploy/local/tools.sh first on PATH), and in the
  rendered objects: every RECVAULT_* variable is documented in pipeline-config/recvault.toml,
  every secret key used is in the Secret template, and every pod (Deployment, Job, CronJob) meets
  the restricted security settings. Each Deployment is told apart by its command:
  - the worker (`recvault worker`): the spool emptyDir holds concurrency x 4 GiB,
    terminationGracePeriodSeconds exceeds shutdown_grace_secs, probes and metrics use the port of
    worker.metrics_addr, the KEDA ScaledObject watches <amqp.prefix>.jobs.work with a target of
    worker.concurrency;
  - the API (`recvault api`): identity recvault-api, api.listen_addr not loopback and on the
    containerPort `http`, startup and liveness probes on /healthz and readiness on /readyz of that
    port (paths of pipeline-config/openapi.json, when it is there), token keys set (a JWKS file
    inside a mounted volume, or an https:// JWKS URL), S3 keys (if any) from a Secret no other pod
    takes S3 keys from;
  - for both: a Service and a ServiceMonitor scrape /metrics on the port that serves it, a
    NetworkPolicy lets traffic reach that port, a PodDisruptionBudget covers the pods;
  each CronJob runs its known recvault command one run at a time, and only the setup Job holds
  the database owner role and the setup identity (the worker and its CronJobs run as
  recvault-worker, the API as recvault-api);
- every metric name in the dashboard and the alerts is declared in services/worker/src/metrics.rs
  or services/api/src/lib.rs (or is a recording rule of the alerts file, or a process_* series of
  the process collector both register); every label matcher names a label the metric has (its
  own, or one Prometheus adds: namespace, pod, instance, ...), with values from the fixed sets of
  the code, per metric: recvault_jobs_total{outcome} from the worker's Outcome,
  recvault_bundles_total{outcome} from OUTCOMES of services/bundles/src/consume.rs, recvault_recoveries_total{outcome}
  from RECOVERY_OUTCOMES, stage, queue,
  placement, capability, and the API's route templates and HTTP status codes (a regex matcher:
  each of its alternatives must match a value); and every declared metric is shown somewhere;
- the IAM policies only name real S3 actions; the worker's and the API's keep the archive denies
  (no delete, no bucket reconfiguration, no lifted hold, no retention but COMPLIANCE, no lowered
  permanent tag); the worker's allow the governance bypass only into COMPLIANCE, and cover the
  bundles prefix of recvault.toml (multipart upload, read-back, tag, lock, hold, listing of
  unfinished uploads); the API's allow reading bundles and raising a recording's tag, lock and
  hold, and nothing else: no write, no delete, no bypass, no staging, no other bucket; each
  station is confined to its own staging prefix;
- with PROMQL_CHECK=<path to a program that reads one PromQL expression per line on stdin and exits
  non-zero on a syntax error>, every expression is parsed too.
Exits 1 on the first class of failure, after printing every problem found.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
TOML = ROOT / "pipeline-config" / "recvault.toml"
METRICS_RS = ROOT / "services" / "worker" / "src" / "metrics.rs"
API_RS = ROOT / "services" / "api" / "src" / "lib.rs"
BUNDLES_CONSUME_RS = ROOT / "services" / "bundles" / "src" / "consume.rs"
OPENAPI = ROOT / "pipeline-config" / "openapi.json"
# Where metrics are declared: every name in one module per process (the worker's, the API's).
METRIC_SOURCES = (METRICS_RS, API_RS)
CAPABILITIES_RS = ROOT / "services" / "store" / "src" / "capabilities.rs"
MAIN_RS = ROOT / "services" / "cli" / "src" / "main.rs"
MAX_RECORDING_GIB = 4

problems: list[str] = []
notes: list[str] = []


def fail(msg: str) -> None:
    problems.append(msg)


def rel(p: Path) -> str:
    return str(p.relative_to(ROOT))


# --- parsing ----------------------------------------------------------------------------------

def parse_all() -> None:
    files = (sorted((ROOT / "k8s").rglob("*.yaml")) + sorted((ROOT / "deploy" / "prometheus").rglob("*.yaml"))
             + sorted((ROOT / "pipeline-config").glob("*.yaml")))
    for f in files:
        try:
            docs = [d for d in yaml.safe_load_all(f.read_text()) if d is not None]
            if not docs:
                fail(f"{rel(f)}: empty")
        except yaml.YAMLError as e:
            fail(f"{rel(f)}: {e}")
    for f in sorted((ROOT / "deploy" / "grafana").glob("*.json")) + sorted((ROOT / "deploy" / "s3").glob("*.json")):
        try:
            json.loads(f.read_text())
        except json.JSONDecodeError as e:
            fail(f"{rel(f)}: {e}")
    notes.append(f"parsed {len(files)} YAML files and the JSON files of deploy/grafana and deploy/s3")


# --- configuration ----------------------------------------------------------------------------

def documented_vars() -> set[str]:
    return set(re.findall(r"RECVAULT_[A-Z0-9_]+__[A-Z0-9_]+", TOML.read_text()))


def toml_defaults() -> dict:
    return tomllib.loads(TOML.read_text())


def check_config_copy() -> None:
    copy = ROOT / "k8s" / "base" / "recvault.toml"
    if copy.read_bytes() != TOML.read_bytes():
        fail("k8s/base/recvault.toml differs from pipeline-config/recvault.toml: cp pipeline-config/recvault.toml k8s/base/")


def render(path: str) -> list[dict] | None:
    kubectl = shutil.which("kubectl")
    if not kubectl:
        notes.append(f"kubectl not found: {path} not rendered (deploy/local/tools.sh installs one)")
        return None
    if not any(n.startswith("kubectl ") for n in notes):
        v = subprocess.run([kubectl, "version", "--client"], capture_output=True, text=True).stdout
        notes.append(f"kubectl {kubectl}: " + "; ".join(line.strip() for line in v.splitlines() if line.strip()))
    out = subprocess.run([kubectl, "kustomize", str(ROOT / path)], capture_output=True, text=True)
    if out.returncode != 0:
        fail(f"kubectl kustomize {path}: {out.stderr.strip()}")
        return None
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def gib(quantity: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?", quantity)
    if not m:
        raise ValueError(quantity)
    n, unit = float(m.group(1)), m.group(2) or ""
    factor = {"": 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}[unit]
    return n * factor / 2**30


def check_rendered(path: str, docs: list[dict]) -> None:
    documented = documented_vars()
    defaults = toml_defaults()
    main_rs = MAIN_RS.read_text()
    template_keys: dict[str, set[str]] = {}
    for text in re.split(r"^---[ \t]*$", (ROOT / "k8s" / "base" / "secret.template.yaml").read_text(), flags=re.M):
        d = yaml.safe_load(text)
        if d:
            keys = set((d.get("stringData") or {}).keys())
            # keys documented as commented-out optional entries of the same Secret count too
            keys |= set(re.findall(r"#\s*(RECVAULT_[A-Z0-9_]+):", text))
            template_keys[d["metadata"]["name"]] = keys

    by_kind: dict[str, list[dict]] = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    configmaps = {c["metadata"]["name"]: c for c in by_kind.get("ConfigMap", [])}
    # service account -> Secrets its pods take static S3 keys from
    s3_key_secrets: dict[str, set[str]] = {}

    def env_of(container: dict) -> dict[str, str | None]:
        env: dict[str, str | None] = {}
        for src in container.get("envFrom", []):
            if "configMapRef" in src:
                cm = configmaps.get(src["configMapRef"]["name"])
                if cm is None:
                    fail(f"{path}: envFrom names a missing ConfigMap {src['configMapRef']['name']}")
                    continue
                env.update(cm.get("data", {}))
        for e in container.get("env", []):
            env[e["name"]] = e.get("value")
            ref = (e.get("valueFrom") or {}).get("secretKeyRef")
            if ref and ref["key"] not in template_keys.get(ref["name"], set()):
                fail(f"{path}: secret key {ref['name']}/{ref['key']} is not in k8s/base/secret.template.yaml")
        return env

    def check_env(owner: str, env: dict[str, str | None]) -> None:
        for name in env:
            if name == "RECVAULT_CONFIG":
                if 'env = "RECVAULT_CONFIG"' not in main_rs:
                    fail(f"{path}: {owner} sets RECVAULT_CONFIG, which services/cli/src/main.rs no longer reads")
            elif name.startswith("RECVAULT_") and name not in documented:
                fail(f"{path}: {owner} sets {name}, not documented in pipeline-config/recvault.toml")

    def check_pod_security(owner: str, pod: dict) -> None:
        psc = pod.get("securityContext", {})
        if not psc.get("runAsNonRoot") or psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            fail(f"{path}: {owner}: pod needs runAsNonRoot and seccomp RuntimeDefault")
        for c in pod["containers"]:
            sc = c.get("securityContext", {})
            if not (sc.get("readOnlyRootFilesystem") and sc.get("allowPrivilegeEscalation") is False
                    and sc.get("capabilities", {}).get("drop") == ["ALL"]):
                fail(f"{path}: {owner}/{c['name']}: needs readOnlyRootFilesystem, no privilege escalation, drop ALL")

    _required = object()

    def setting(env: dict[str, str | None], section: str, key: str, default=_required):
        var = f"RECVAULT_{section.upper()}__{key.upper()}"
        if env.get(var) is not None:
            return env[var]
        if default is _required:
            return defaults[section][key]
        return defaults.get(section, {}).get(key, default)

    def port_of(c: dict, port) -> int | None:
        """A probe's or Service's port (a name of the container's ports, or a number) as a number."""
        if isinstance(port, int):
            return port
        return {p.get("name"): p["containerPort"] for p in c.get("ports", [])}.get(port)

    def selects(selector: dict | None, labels: dict) -> bool:
        match = (selector or {}).get("matchLabels") or {}
        return bool(match) and all(labels.get(k) == v for k, v in match.items())

    def pod_labels_of(dep: dict) -> dict:
        return dep["spec"]["template"]["metadata"].get("labels", {})

    def check_listen(owner: str, c: dict, env: dict, section: str, key: str, port_name: str) -> int | None:
        addr = str(setting(env, section, key))
        host, port = addr.rsplit(":", 1)
        if host in ("127.0.0.1", "localhost", "[::1]"):
            fail(f"{path}: {owner}: {section}.{key} {addr} is loopback: probes and Prometheus cannot reach it")
        ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
        if ports.get(port_name) != int(port):
            fail(f"{path}: {owner}: containerPort '{port_name}' {ports.get(port_name)} != {section}.{key} port {port}")
        return ports.get(port_name)

    def check_probes(owner: str, c: dict, port: int | None, paths: dict[str, str]) -> None:
        for probe, want in paths.items():
            if probe not in c:
                fail(f"{path}: {owner}: missing {probe}")
                continue
            get = c[probe].get("httpGet", {})
            if get.get("path") != want:
                fail(f"{path}: {owner}: {probe} must be {want}, not {get.get('path')}")
            if port is not None and port_of(c, get.get("port")) != port:
                fail(f"{path}: {owner}: {probe} port {get.get('port')} is not the port the process serves ({port})")

    def check_served(owner: str, pod_labels: dict, c: dict, port_name: str, open_to: str) -> None:
        """/metrics on `port_name` is scraped (a Service selecting the pods targets that port and a
        ServiceMonitor selecting the Service scrapes that Service port at /metrics), the port is
        reachable through the NetworkPolicies (networkpolicy.yaml selects every recvault pod, so
        ingress not listed is dropped), and a PodDisruptionBudget covers the pods."""
        number = port_of(c, port_name)
        scraped = False
        for svc in by_kind.get("Service", []):
            if not selects({"matchLabels": svc["spec"].get("selector")}, pod_labels):
                continue
            for sp in svc["spec"].get("ports", []):
                if port_of(c, sp.get("targetPort", sp["port"])) != number:
                    continue
                for sm in by_kind.get("ServiceMonitor", []):
                    if not selects(sm["spec"].get("selector"), svc["metadata"].get("labels", {})):
                        continue
                    if any(e.get("port") == sp.get("name") and e.get("path", "/metrics") == "/metrics"
                           for e in sm["spec"].get("endpoints", [])):
                        scraped = True
        if not scraped:
            fail(f"{path}: {owner}: no ServiceMonitor scrapes /metrics through a Service port targeting "
                 f"its '{port_name}' port ({number}): its metrics would be shown nowhere")
        opened = False
        for np in by_kind.get("NetworkPolicy", []):
            if "Ingress" not in np["spec"].get("policyTypes", ["Ingress"]):
                continue
            if np["spec"].get("podSelector") and not selects(np["spec"]["podSelector"], pod_labels):
                continue
            for rule in np["spec"].get("ingress", []):
                if any(port_of(c, p_.get("port")) == number for p_ in rule.get("ports", [])):
                    opened = True
        if not opened:
            fail(f"{path}: {owner}: no NetworkPolicy admits traffic to port {number} ({open_to})")
        if not any(selects(pdb["spec"].get("selector"), pod_labels) for pdb in by_kind.get("PodDisruptionBudget", [])):
            fail(f"{path}: {owner}: no PodDisruptionBudget covers its pods")

    def check_worker(owner: str, dep: dict, pod: dict, c: dict, env: dict) -> None:
        concurrency = int(setting(env, "worker", "concurrency"))
        grace = int(setting(env, "worker", "shutdown_grace_secs"))
        port = check_listen(owner, c, env, "worker", "metrics_addr", "metrics")
        check_probes(owner, c, port, {"startupProbe": "/healthz", "livenessProbe": "/healthz",
                                      "readinessProbe": "/readyz"})
        check_served(owner, pod_labels_of(dep), c, "metrics", "Prometheus scrapes /metrics there")
        tgp = pod.get("terminationGracePeriodSeconds", 30)
        if tgp <= grace:
            fail(f"{path}: {owner}: terminationGracePeriodSeconds {tgp} <= shutdown_grace_secs {grace}")
        spool_dir = env.get("RECVAULT_WORKER__SPOOL_DIR")
        mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        if not spool_dir or spool_dir not in mounts:
            fail(f"{path}: {owner}: RECVAULT_WORKER__SPOOL_DIR must be a mounted volume (the root filesystem is read-only)")
        else:
            vol = volumes[mounts[spool_dir]]
            size = (vol.get("emptyDir") or {}).get("sizeLimit")
            if size is None:
                notes.append(f"{path}: {owner}: spool is not an emptyDir with sizeLimit; size not checked")
            elif gib(size) < concurrency * MAX_RECORDING_GIB:
                fail(f"{path}: {owner}: spool sizeLimit {size} < concurrency {concurrency} x {MAX_RECORDING_GIB} GiB")
            else:
                cap = env.get("RECVAULT_WORKER__SPOOL_MAX_BYTES")
                if cap is None or int(cap) > gib(size) * 2**30:
                    # statvfs inside an emptyDir sees the node's disk, not the sizeLimit: without
                    # the cap the worker would spool past the limit and get the pod evicted.
                    fail(f"{path}: {owner}: RECVAULT_WORKER__SPOOL_MAX_BYTES must be set and at most the spool sizeLimit {size}")
                eph = c.get("resources", {}).get("requests", {}).get("ephemeral-storage")
                if eph is None or gib(eph) < gib(size):
                    fail(f"{path}: {owner}: ephemeral-storage request {eph} below the spool sizeLimit {size}")
        gst = env.get("GST_REGISTRY")
        if not gst or not any(gst.startswith(m.rstrip("/") + "/") for m in mounts):
            fail(f"{path}: {owner}: GST_REGISTRY must point into a mounted (writable) volume")
        for so in by_kind.get("ScaledObject", []):
            if so["spec"]["scaleTargetRef"]["name"] != dep["metadata"]["name"]:
                continue
            prefix = setting(env, "amqp", "prefix")
            for t in so["spec"]["triggers"]:
                if t["type"] != "rabbitmq":
                    continue
                md = t["metadata"]
                if md.get("queueName") != f"{prefix}.jobs.work":
                    fail(f"{path}: ScaledObject watches {md.get('queueName')}, the worker consumes {prefix}.jobs.work")
                if int(md.get("value", 0)) != concurrency:
                    fail(f"{path}: ScaledObject target {md.get('value')} != worker.concurrency {concurrency}")
            if "replicas" in dep["spec"]:
                fail(f"{path}: Deployment keeps spec.replicas under a ScaledObject (apply would fight the HPA)")

    def check_api(owner: str, dep: dict, pod: dict, c: dict, env: dict) -> None:
        port = check_listen(owner, c, env, "api", "listen_addr", "http")
        # Startup and liveness ask whether the process answers, readiness whether Postgres,
        # RabbitMQ and the store do: a liveness probe on /readyz would restart every replica
        # whenever Postgres is down.
        check_probes(owner, c, port, {"startupProbe": "/healthz", "livenessProbe": "/healthz",
                                      "readinessProbe": "/readyz"})
        check_served(owner, pod_labels_of(dep), c, "http", "clients and Prometheus")
        # The probes and the scrape name routes of the API's own OpenAPI document (generated from
        # the code and committed; deploy/local/validate.sh validates it).
        if OPENAPI.is_file():
            documented = set(json.loads(OPENAPI.read_text()).get("paths", {}))
            for route in ("/healthz", "/readyz", "/metrics"):
                if route not in documented:
                    fail(f"{path}: {owner}: probes or Prometheus use {route}, which {rel(OPENAPI)} does not list")
        else:
            notes.append(f"{rel(OPENAPI)} missing: the API's probe paths not checked against it")
        # The API refuses to start without token keys; keys fetched over plain HTTP could be
        # replaced on the way, and with them every token accepted.
        jwks_file = setting(env, "api", "jwks_file", None)
        jwks_url = setting(env, "api", "jwks_url", None)
        mounts = [m["mountPath"].rstrip("/") + "/" for m in c.get("volumeMounts", [])]
        if jwks_file:
            if not any(str(jwks_file).startswith(m) for m in mounts):
                fail(f"{path}: {owner}: api.jwks_file {jwks_file} is not inside a mounted volume")
        elif jwks_url:
            if not str(jwks_url).startswith("https://"):
                fail(f"{path}: {owner}: api.jwks_url {jwks_url} must be https:// (the keys decide whose tokens pass)")
        else:
            fail(f"{path}: {owner}: neither RECVAULT_API__JWKS_FILE nor RECVAULT_API__JWKS_URL is set: the API refuses to start")
        stop = ((c.get("lifecycle") or {}).get("preStop") or {}).get("sleep", {}).get("seconds", 0)
        tgp = pod.get("terminationGracePeriodSeconds", 30)
        if tgp <= stop:
            fail(f"{path}: {owner}: terminationGracePeriodSeconds {tgp} <= preStop sleep {stop}: no time left to finish requests")

    def check_identity(owner: str, pod: dict, want: str) -> None:
        # R21.1: only `recvault setup` may configure buckets (setup IAM role) and change the schema
        # (database owner role); the worker and its CronJobs run as the worker role, the API as a
        # role of its own (deploy/s3/api-policy.json), all with the service database role.
        setup = want == "recvault-setup"
        sa = pod.get("serviceAccountName")
        if sa != want:
            fail(f"{path}: {owner}: serviceAccountName {sa} (expected {want})")
        for c in pod["containers"]:
            refs = {((e.get("valueFrom") or {}).get("secretKeyRef") or {}).get("key") for e in c.get("env", [])}
            names = {e["name"] for e in c.get("env", [])}
            owner_role = "RECVAULT_DATABASE__OWNER_URL"
            if not setup and (owner_role in refs or owner_role in names):
                fail(f"{path}: {owner}/{c['name']}: only the setup Job may hold {owner_role} (the owner role)")
            if setup and owner_role not in refs:
                fail(f"{path}: {owner}/{c['name']}: the setup Job applies migrations: it needs {owner_role}")
            # Static S3 keys are an identity too: the API must not borrow another role's keys.
            for e in c.get("env", []):
                ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                if ref and e["name"] in ("RECVAULT_S3__ACCESS_KEY_ID", "RECVAULT_S3__SECRET_ACCESS_KEY"):
                    s3_key_secrets.setdefault(want, set()).add(ref["name"])

    # Deployments are told apart by their command: `recvault worker` and `recvault api`.
    roles = {"worker": ("recvault-worker", check_worker), "api": ("recvault-api", check_api)}
    seen_roles: set[str] = set()
    for dep in by_kind.get("Deployment", []):
        owner = f"Deployment/{dep['metadata']['name']}"
        pod = dep["spec"]["template"]["spec"]
        c = pod["containers"][0]
        role = (c.get("args") or [None])[0]
        if role not in roles:
            fail(f"{path}: {owner}: unknown Deployment (args {c.get('args')}; known: "
                 + ", ".join(f"`recvault {r}`" for r in roles) + ")")
            continue
        seen_roles.add(role)
        check_pod_security(owner, pod)
        env = env_of(c)
        check_env(owner, env)
        want_sa, check = roles[role]
        check_identity(owner, pod, want_sa)
        check(owner, dep, pod, c, env)
    for role in roles:
        if role not in seen_roles:
            fail(f"{path}: no Deployment runs `recvault {role}`")
    workers = {d["metadata"]["name"] for d in by_kind.get("Deployment", [])
               if (d["spec"]["template"]["spec"]["containers"][0].get("args") or [None])[0] == "worker"}
    for so in by_kind.get("ScaledObject", []):
        if so["spec"]["scaleTargetRef"]["name"] not in workers:
            fail(f"{path}: ScaledObject/{so['metadata']['name']} scales {so['spec']['scaleTargetRef']['name']}, "
                 "which is not a worker Deployment (its queue target is the worker's)")


    for job in by_kind.get("Job", []):
        owner = f"Job/{job['metadata']['name']}"
        pod = job["spec"]["template"]["spec"]
        check_pod_security(owner, pod)
        check_identity(owner, pod, "recvault-setup")
        for c in pod["containers"]:
            check_env(owner, env_of(c))
            if c.get("args", [])[:1] != ["setup"]:
                fail(f"{path}: {owner}: expected `recvault setup`")

    # Every CronJob runs one known recvault command, one run at a time: two sweeps or two
    # reconciliations at once would race each other on the same objects and findings.
    cron_commands = {
        "recvault-staging-sweep": ["staging", "sweep"],
        "recvault-reconcile": ["reconcile", "--repair"],
    }
    for cj in by_kind.get("CronJob", []):
        name = cj["metadata"]["name"]
        owner = f"CronJob/{name}"
        pod = cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        check_pod_security(owner, pod)
        check_identity(owner, pod, "recvault-worker")
        want = cron_commands.get(name)
        if want is None:
            fail(f"{path}: {owner}: unknown CronJob (known: {', '.join(cron_commands)})")
        for c in pod["containers"]:
            check_env(owner, env_of(c))
            if want and c.get("args", [])[:len(want)] != want:
                fail(f"{path}: {owner}: expected `recvault {' '.join(want)}`, got {c.get('args')}")
        if cj["spec"].get("concurrencyPolicy") != "Forbid":
            fail(f"{path}: {owner}: two runs at once would race each other: concurrencyPolicy must be Forbid")
    for name in cron_commands:
        if not any(cj["metadata"]["name"] == name for cj in by_kind.get("CronJob", [])):
            fail(f"{path}: CronJob/{name} missing")

    api_keys = s3_key_secrets.get("recvault-api", set())
    for other, secrets in s3_key_secrets.items():
        if other != "recvault-api" and api_keys & secrets:
            fail(f"{path}: the API takes its S3 keys from {sorted(api_keys & secrets)}, as {other} does: "
                 "give it its own S3 user (deploy/s3/api-policy.json) in its own Secret")

    prepare = [f"{d['kind']}/{d['metadata']['name']}" for d in docs
               if d["metadata"].get("labels", {}).get("recvault.io/phase") == "prepare"]
    for needed in ("Namespace", "ConfigMap", "Job", "ServiceAccount"):
        if not any(p.startswith(needed + "/") for p in prepare):
            fail(f"{path}: no {needed} carries recvault.io/phase=prepare (needed by the setup step)")
    notes.append(f"{path}: rendered {len(docs)} objects; phase=prepare selects {', '.join(prepare)}")


# --- metrics ----------------------------------------------------------------------------------

ALERTS = ROOT / "deploy" / "prometheus" / "recvault-alerts.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "recvault-ingest.json"
# What the `prometheus` crate's process collector exposes (Linux), for process_* names.
PROCESS_METRICS = {
    "process_cpu_seconds_total", "process_open_fds", "process_max_fds", "process_virtual_memory_bytes",
    "process_resident_memory_bytes", "process_start_time_seconds", "process_threads",
}


def rust_block(src: str, start: int) -> str:
    """The text between the first `{` at or after `start` and its matching `}` (braces in
    string literals and comments are rare enough in metrics.rs to ignore)."""
    i = src.index("{", start)
    depth = 0
    for j in range(i, len(src)):
        if src[j] == "{":
            depth += 1
        elif src[j] == "}":
            depth -= 1
            if depth == 0:
                return src[i + 1:j]
    raise ValueError("unbalanced braces")


def strip_comments(src: str) -> str:
    return re.sub(r"//[^\n]*", "", src)


def declared_metrics() -> dict[str, dict]:
    """Every metric name passed to a constructor in the metrics modules (METRIC_SOURCES):
    `Opts::new("recvault_...")`, `HistogramOpts::new(...)`, `IntCounter::new(...)`,
    `Gauge::with_opts(...)`, the `register_*!(...)` macros, ... A name is a histogram when its
    constructor is HistogramOpts or a `register_histogram*!` macro. Its label names are the
    `&["..."]` list of its constructor call (up to its `.expect(`)."""
    metrics: dict[str, dict] = {}
    for f in METRIC_SOURCES:
        src = strip_comments(f.read_text())
        for m in re.finditer(r'\b(\w+)(?:::new|::with_opts|!)\(\s*"(recvault_[a-z0-9_]+)"', src):
            ctor, name = m.group(1), m.group(2)
            end = src.find(".expect(", m.end())
            labels = re.search(r"&\[([^\]]*)\]", src[m.end():end if end > 0 else None])
            if name in metrics:
                fail(f"{rel(f)}: metric {name} is declared twice (also in {metrics[name]['file']})")
            metrics[name] = {
                "kind": "histogram" if ctor.startswith(("HistogramOpts", "register_histogram")) else "other",
                "labels": set(re.findall(r'"(\w+)"', labels.group(1))) if labels else set(),
                "file": rel(f),
            }
    return metrics


def series_names(metrics: dict[str, dict]) -> dict[str, str]:
    """Every series name a scrape can show -> the metric it belongs to."""
    names = {}
    for n, m in metrics.items():
        for s in ("_bucket", "_sum", "_count") if m["kind"] == "histogram" else ("",):
            names[n + s] = n
    return names


def const_strings(src: str, name: str) -> set[str] | None:
    m = re.search(rf"pub const {name}\b[^=]*=\s*\[(.*?)\];", src, re.S)
    return set(re.findall(r'"([a-z0-9_]+)"', m.group(1))) if m else None


def label_values() -> dict[tuple[str, str], set[str]]:
    """(metric, label) -> the values the code can emit, from the fixed sets of the code."""
    src = strip_comments(METRICS_RS.read_text())
    sets: dict[tuple[str, str], set[str]] = {}
    # recvault_jobs_total{outcome}: the string arms of the fn that labels an Outcome (whatever it
    # is called), inside `impl Outcome { ... }`.
    impl = re.search(r"impl\s+Outcome\s*\{", src)
    outcomes = set(re.findall(r'=>\s*"([a-z0-9_]+)"', rust_block(src, impl.start()))) if impl else set()
    if outcomes:
        sets[("recvault_jobs_total", "outcome")] = outcomes
    else:
        fail("services/worker/src/metrics.rs: no Outcome labels found (parser out of date?)")
    # recvault_bundles_total{outcome}: OUTCOMES of the bundle consumer, which metrics.rs
    # pre-creates and the consumer increments.
    bundle_outcomes = const_strings(strip_comments(BUNDLES_CONSUME_RS.read_text()), "OUTCOMES")
    if bundle_outcomes and "recvault_bundles::OUTCOMES" in src:
        sets[("recvault_bundles_total", "outcome")] = bundle_outcomes
    else:
        fail("services/bundles/src/consume.rs has no const OUTCOMES, or metrics.rs no longer labels "
             "recvault_bundles_total with it (parser out of date?)")
    for metric, label, const in (("recvault_stage_duration_seconds", "stage", "STAGES"),
                                 ("recvault_queue_messages", "queue", "QUEUES"),
                                 ("recvault_archive_writes_total", "placement", "PLACEMENTS"),
                                 ("recvault_recoveries_total", "outcome", "RECOVERY_OUTCOMES")):
        values = const_strings(src, const)
        if values:
            sets[(metric, label)] = values
        else:
            notes.append(f"metrics.rs has no const {const}: {label} values not checked")
    caps_src = strip_comments(CAPABILITIES_RS.read_text())
    code_fn = re.search(r"fn code\(self\)\s*->\s*&'static str", caps_src)
    if code_fn:
        sets[("recvault_storage_capability", "capability")] = set(
            re.findall(r'=>\s*"([a-z0-9_]+)"', rust_block(caps_src, code_fn.start())))
    else:
        fail("services/store/src/capabilities.rs: no `fn code(self) -> &'static str` (parser out of date?)")
    # The API labels requests by the route template axum matched, "unmatched" for anything else
    # (never a path with an id in it), and the numeric HTTP status.
    api_src = strip_comments(API_RS.read_text())
    routes = set(re.findall(r'\.route\(\s*"([^"]+)"', api_src))
    fallback = re.findall(r'MatchedPath>\(\)\s*\.map_or\(\s*"([a-z_]+)"', api_src)
    if routes and fallback:
        routes |= set(fallback)
        sets[("recvault_api_requests_total", "route")] = routes
        sets[("recvault_api_request_duration_seconds", "route")] = routes
    else:
        fail("services/api/src/lib.rs: no `.route(\"...\")` or no MatchedPath fallback label found (parser out of date?)")
    sets[("recvault_api_requests_total", "status")] = {str(code) for code in range(100, 600)}
    return sets


def recording_rules() -> set[str]:
    alerts = yaml.safe_load(ALERTS.read_text())
    return {r["record"] for g in alerts["spec"]["groups"] for r in g["rules"] if "record" in r}


def expressions() -> list[tuple[str, str]]:
    exprs = []
    alerts = yaml.safe_load(ALERTS.read_text())
    for g in alerts["spec"]["groups"]:
        for r in g["rules"]:
            if "record" in r:
                exprs.append((f"record {r['record']}", r["expr"]))
                continue
            exprs.append((f"alert {r['alert']}", r["expr"]))
            labels = r.get("labels", {})
            if "requirement" not in labels and labels.get("severity") != "info":
                notes.append(f"alert {r['alert']} cites no requirement")
    dash = json.loads(DASHBOARD.read_text())
    for p in dash["panels"]:
        for t in p.get("targets", []):
            exprs.append((f"panel {p['title']!r}", t["expr"]))
    for v in dash["templating"]["list"]:
        if v.get("type") == "query":
            exprs.append((f"variable {v['name']}", v["query"]["query"]))
    return exprs


# Labels Prometheus (with the Operator's ServiceMonitors) adds to every scraped series.
TARGET_LABELS = {"namespace", "pod", "instance", "job", "service", "endpoint", "container"}
SELECTOR = re.compile(r"(?<![\w:$])([A-Za-z_:][\w:]*)?\s*\{([^{}]*)\}")
MATCHER = re.compile(r'([A-Za-z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')


def alternatives(pattern: str) -> list[str]:
    """The top-level alternatives of a regex (`a|b(c|d)` -> `a`, `b(c|d)`)."""
    out, depth, cur, i = [], 0, "", 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            cur += pattern[i:i + 2]
            i += 2
            continue
        depth += ch in "([" and 1 or 0
        depth -= ch in ")]" and 1 or 0
        if ch == "|" and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
        i += 1
    return out + [cur]


def listing(values: set[str]) -> str:
    ordered = sorted(values)
    return ", ".join(ordered) if len(ordered) < 40 else f"{len(ordered)} values, {ordered[0]} ... {ordered[-1]}"


def check_matchers(where: str, expr: str, series: dict[str, str], metrics: dict[str, dict],
                   values: dict[tuple[str, str], set[str]]) -> None:
    """Every label matcher of a selector on a declared metric names a label that metric has, with
    values (or, for a regex, alternatives matching values) the code emits for that metric."""
    for name, body in SELECTOR.findall(expr):
        metric = series.get(name)
        if metric is None and not name.startswith("process_"):
            continue  # a recording rule (checked where it is defined) or a bare {...}
        own = metrics[metric]["labels"] if metric else set()
        allowed = own | TARGET_LABELS | ({"le"} if name.endswith("_bucket") else set())
        for label, op, raw in MATCHER.findall(body):
            if label not in allowed:
                fail(f"{where}: {name} has no label {label!r} (its labels: {', '.join(sorted(own)) or 'none'})")
                continue
            known = values.get((metric, label))
            if known is None:
                continue
            value = raw.replace('\\"', '"').replace("\\\\", "\\")
            if op in ("=", "!="):
                if value not in known:
                    fail(f"{where}: {name}{{{label}{op}{raw!r}}}: not a value the code emits ({listing(known)})")
                continue
            for alt in alternatives(value):
                try:
                    rx = re.compile(alt)
                except re.error as e:
                    fail(f"{where}: {name}{{{label}{op}{raw!r}}}: {alt!r} is not a regex ({e})")
                    continue
                if not any(rx.fullmatch(v) for v in known):
                    fail(f"{where}: {name}{{{label}{op}{raw!r}}}: {alt!r} matches no value the code emits "
                         f"({listing(known)})")


def check_metrics() -> None:
    metrics = declared_metrics()
    if not metrics:
        fail("no metric found in " + ", ".join(rel(f) for f in METRIC_SOURCES) + " (parser out of date?)")
        return
    for f in METRIC_SOURCES:
        if not any(m["file"] == rel(f) for m in metrics.values()):
            fail(f"no metric found in {rel(f)} (parser out of date?)")
    series = series_names(metrics)
    records = recording_rules()
    values = label_values()
    for metric, label in values:
        if metric not in metrics or label not in metrics[metric]["labels"]:
            fail(f"validate.py knows values of {metric}{{{label}}}, which the code does not declare (parser out of date?)")
    code = "".join(f.read_text() for d in ("worker", "api") for f in (ROOT / "services" / d / "src").rglob("*.rs"))
    process_collector = "ProcessCollector" in code
    if "86400" not in METRICS_RS.read_text() and "24.0 * 3600.0" not in METRICS_RS.read_text():
        fail("recvault_upload_delay_seconds has no 24 h bucket: the R17.1 panels and alert need le=86400")
    used = set()
    exprs = expressions()
    for where, e in exprs:
        # A recording rule's name (namespace:recvault_x:count) is not a metric of the code.
        bare = e
        for r in records:
            bare = bare.replace(r, "")
        for name in re.findall(r"(?<![:\w])(recvault_[a-z0-9_]+)\b", bare):
            if name in series:
                used.add(series[name])
            else:
                fail(f"{where}: unknown metric {name} (declared: {', '.join(sorted(series))})")
        for name in re.findall(r"(?<![:\w])(process_[a-z0-9_]+)\b", bare):
            if name not in PROCESS_METRICS:
                fail(f"{where}: {name} is not a series of the process collector")
            elif not process_collector:
                fail(f"{where}: uses {name}, but neither services/worker/src nor services/api/src registers a ProcessCollector")
        check_matchers(where, e, series, metrics, values)
    unused = set(metrics) - used
    if unused:
        fail(f"metrics declared but shown nowhere: {', '.join(sorted(unused))}")
    notes.append(f"{len(exprs)} PromQL expressions use only the {len(metrics)} metrics declared in "
                 + " and ".join(rel(f) for f in METRIC_SOURCES)
                 + (f", and the recording rules {', '.join(sorted(records))}" if records else ""))
    notes.append("label values checked per metric: "
                 + "; ".join(f"{m}{{{lab}}} ({len(v)})" for (m, lab), v in sorted(values.items())))


def check_promql_syntax() -> None:
    tool = os.environ.get("PROMQL_CHECK")
    if not tool:
        notes.append("PROMQL_CHECK not set: PromQL syntax not parsed")
        return
    for where, e in expressions():
        if where.startswith("variable "):
            continue  # label_values(...) is Grafana templating, not PromQL
        concrete = (e.replace("$__rate_interval", "5m").replace("$__range", "1d")
                    .replace("$namespace", "recvault"))
        one_line = " ".join(concrete.split())
        out = subprocess.run([tool], input=one_line + "\n", capture_output=True, text=True)
        if out.returncode != 0:
            fail(f"{where}: PromQL does not parse: {out.stdout.strip()} {out.stderr.strip()}")
    notes.append("every PromQL expression parsed with " + tool)


# --- IAM --------------------------------------------------------------------------------------

S3_ACTIONS = {
    "s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion",
    "s3:GetObjectTagging", "s3:GetObjectVersionTagging", "s3:PutObjectTagging", "s3:PutObjectVersionTagging",
    "s3:DeleteObjectTagging", "s3:DeleteObjectVersionTagging", "s3:GetObjectRetention", "s3:PutObjectRetention",
    "s3:GetObjectLegalHold", "s3:PutObjectLegalHold", "s3:BypassGovernanceRetention", "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts", "s3:ListBucket", "s3:ListBucketVersions", "s3:ListBucketMultipartUploads",
    "s3:CreateBucket", "s3:DeleteBucket", "s3:PutBucketVersioning", "s3:GetBucketVersioning",
    "s3:PutBucketObjectLockConfiguration", "s3:GetBucketObjectLockConfiguration", "s3:PutLifecycleConfiguration",
    "s3:GetLifecycleConfiguration", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy", "s3:PutBucketAcl",
    "s3:PutObjectAcl", "s3:PutObjectVersionAcl", "s3:PutBucketOwnershipControls", "s3:PutReplicationConfiguration",
    "s3:PutEncryptionConfiguration", "s3:*",
}


def statements(policy: dict):
    for s in policy["Statement"]:
        acts = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
        res = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
        yield s, acts, res


ARCHIVE = "arn:aws:s3:::recvault-archive"
STAGING = "arn:aws:s3:::recvault-staging"


def granting(policy: dict, effect: str, action: str, arn: str, conditional: bool | None = None) -> list[dict]:
    """The statements of `effect` that apply to `action` on `arn` as IAM matches them (wildcards
    `*` and `?` in actions and resources); `conditional` False/True keeps only statements
    without/with a Condition."""
    return [s for s, acts, res in statements(policy) if s["Effect"] == effect
            and (conditional is None or ("Condition" in s) == conditional)
            and any(fnmatch.fnmatchcase(action, a) for a in acts)
            and any(fnmatch.fnmatchcase(arn, r) for r in res)]


# R21.1: the archive only grows and only setup configures it. Denied to every identity that runs
# against the archive (worker, API), unconditionally, on every prefix.
ARCHIVE_OBJECT_DENIES = ("s3:DeleteObject", "s3:DeleteObjectVersion", "s3:DeleteObjectTagging",
                         "s3:DeleteObjectVersionTagging", "s3:PutObjectAcl", "s3:PutObjectVersionAcl")
ARCHIVE_BUCKET_DENIES = ("s3:DeleteBucket", "s3:PutBucketObjectLockConfiguration", "s3:PutBucketVersioning",
                         "s3:PutLifecycleConfiguration", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy",
                         "s3:PutBucketAcl", "s3:PutBucketOwnershipControls", "s3:PutReplicationConfiguration",
                         "s3:PutEncryptionConfiguration")


def check_archive_denies(name: str, policy: dict, prefixes: list[str]) -> None:
    """The archive denies of the worker policy, for any policy of an identity that touches the
    archive: no delete or ACL on any object, no bucket reconfiguration, no hold lifted, no
    retention but COMPLIANCE, no permanent tag lowered (R19.1, R21.1)."""
    samples = [f"{ARCHIVE}/{p}x" for p in prefixes]
    for a in ARCHIVE_OBJECT_DENIES:
        for arn in samples:
            if granting(policy, "Allow", a, arn):
                fail(f"{name} allows {a} on {arn} (R21.1)")
            if not granting(policy, "Deny", a, arn, conditional=False):
                fail(f"{name} does not deny {a} on {arn} unconditionally (R21.1)")
    for a in ARCHIVE_BUCKET_DENIES:
        if granting(policy, "Allow", a, ARCHIVE):
            fail(f"{name} allows {a} on the archive bucket (only recvault setup configures it, R21.1)")
        if not granting(policy, "Deny", a, ARCHIVE, conditional=False):
            fail(f"{name} does not deny {a} on the archive bucket unconditionally (R21.1)")
    lowering = (
        ("s3:PutObjectLegalHold", {"StringNotEquals": {"s3:object-lock-legal-hold": "ON"}},
         "lifting a legal hold"),
        ("s3:PutObjectRetention", {"StringNotEquals": {"s3:object-lock-mode": "COMPLIANCE"}},
         "a retention other than COMPLIANCE"),
        ("s3:PutObjectTagging", {"StringEquals": {"s3:ExistingObjectTag/retention": "permanent"},
                                 "StringNotEquals": {"s3:RequestObjectTag/retention": "permanent"}},
         "lowering a permanent retention tag"),
        ("s3:PutObjectVersionTagging", {"StringEquals": {"s3:ExistingObjectTag/retention": "permanent"},
                                        "StringNotEquals": {"s3:RequestObjectTag/retention": "permanent"}},
         "lowering a permanent retention tag"),
    )
    for a, condition, what in lowering:
        for arn in samples:
            if not any(s.get("Condition") == condition for s in granting(policy, "Deny", a, arn, conditional=True)):
                fail(f"{name} does not deny {a} on {arn} for {what} (R19.1: never lowered), "
                     f"i.e. Deny with Condition {json.dumps(condition)}")


def check_iam() -> None:
    d = ROOT / "deploy" / "s3"
    policies = {f.stem: json.loads(f.read_text()) for f in d.glob("*-policy.json")}
    for name in ("worker-policy", "station-policy", "setup-policy", "api-policy"):
        if name not in policies:
            fail(f"deploy/s3/{name}.json missing")
    for name, p in policies.items():
        if p.get("Version") != "2012-10-17":
            fail(f"{name}: Version must be 2012-10-17")
        sids = [s.get("Sid") for s in p["Statement"]]
        if len(set(sids)) != len(sids):
            fail(f"{name}: duplicate Sid")
        for s in p["Statement"]:
            for k in ("NotAction", "NotResource", "NotPrincipal"):
                if k in s:
                    fail(f"{name}/{s.get('Sid')}: {k} is not understood by this checker")
        for s, acts, res in statements(p):
            if s["Effect"] not in ("Allow", "Deny"):
                fail(f"{name}/{s.get('Sid')}: bad Effect")
            for a in acts:
                if a not in S3_ACTIONS:
                    fail(f"{name}/{s.get('Sid')}: {a} is not an S3 action this checker knows")
            for r in res:
                if not r.startswith("arn:aws:s3:::"):
                    fail(f"{name}/{s.get('Sid')}: resource {r} is not an S3 ARN")
    cfg = toml_defaults()
    quarantine = cfg["s3"]["quarantine_prefix"]
    bundles = cfg["bundles"]["prefix"]
    w = policies.get("worker-policy")
    if w:
        archive, staging = ARCHIVE, STAGING

        def on(bucket: str, effect: str, conditional: bool | None) -> set[str]:
            return {a for s, acts, res in statements(w) if s["Effect"] == effect
                    and (conditional is None or ("Condition" in s) == conditional)
                    for r in res if r == bucket or r.startswith(bucket + "/") for a in acts}

        allowed_on_archive = on(archive, "Allow", None)
        allowed_unconditionally = on(archive, "Allow", False)
        check_archive_denies("worker-policy", w, ["recordings/", quarantine, bundles])
        # The governance bypass: only to turn a GOVERNANCE lock back into COMPLIANCE (reconcile).
        bypass = "s3:BypassGovernanceRetention"
        if bypass in allowed_unconditionally:
            fail(f"worker-policy allows {bypass} on the archive without a condition (R21.1)")
        for s_, acts, res in statements(w):
            if bypass in acts and any(r.startswith(archive) for r in res):
                cond = s_.get("Condition", {})
                key = {"Allow": "StringEquals", "Deny": "StringNotEquals"}[s_["Effect"]]
                if cond.get(key, {}).get("s3:object-lock-mode") != "COMPLIANCE":
                    fail(f"worker-policy/{s_.get('Sid')}: {bypass} on the archive must be tied to "
                         f"{key} s3:object-lock-mode COMPLIANCE")
        if not any(s_["Effect"] == "Deny" and bypass in acts and any(r.startswith(archive) for r in res)
                   for s_, acts, res in statements(w)):
            fail(f"worker-policy does not deny {bypass} on the archive for anything but COMPLIANCE")
        for a in ("s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:PutObjectTagging",
                  "s3:PutObjectVersionTagging", "s3:GetObjectTagging", "s3:GetObjectVersionTagging",
                  "s3:PutObjectRetention", "s3:GetObjectRetention", "s3:PutObjectLegalHold", "s3:GetObjectLegalHold",
                  "s3:AbortMultipartUpload", "s3:ListBucket", "s3:ListBucketVersions",
                  "s3:GetBucketObjectLockConfiguration", "s3:GetBucketVersioning", "s3:GetLifecycleConfiguration"):
            if a not in allowed_on_archive:
                fail(f"worker-policy lacks {a} on the archive, which services/store/src uses")
        allowed_on_staging = on(staging, "Allow", None)
        for a in ("s3:GetObject", "s3:GetObjectVersion", "s3:DeleteObject", "s3:DeleteObjectVersion",
                  "s3:ListBucket", "s3:ListBucketVersions", "s3:GetBucketVersioning"):
            if a not in allowed_on_staging:
                fail(f"worker-policy lacks {a} on staging, which services/store/src uses")
        if not any(r == f"{archive}/{quarantine}*" for s, acts, res in statements(w) for r in res):
            fail(f"worker-policy does not cover the quarantine prefix {quarantine!r} of recvault.toml")
        # R19.1(2) case-file bundles under [bundles] prefix: the builder's multipart upload
        # (Create/UploadPart/Complete = PutObject, with x-amz-tagging), its abort, the read-back,
        # the permanent tag, the COMPLIANCE lock and the legal hold (services/store/src/upload.rs,
        # services/bundles/src/build.rs); reconcile reads them back and raises what fell
        # (services/worker/src/reconcile.rs), restoring a switched lock with the bypass.
        bundle = f"{archive}/{bundles}C-1/00000000-0000-0000-0000-000000000000.tar"
        for a in ("s3:PutObject", "s3:AbortMultipartUpload", "s3:GetObject", "s3:GetObjectVersion",
                  "s3:GetObjectTagging", "s3:GetObjectVersionTagging", "s3:PutObjectTagging",
                  "s3:PutObjectVersionTagging", "s3:GetObjectRetention", "s3:PutObjectRetention",
                  "s3:GetObjectLegalHold", "s3:PutObjectLegalHold"):
            if not granting(w, "Allow", a, bundle, conditional=False):
                fail(f"worker-policy lacks {a} on the bundles prefix {bundles!r} of recvault.toml ({bundle})")
        if not any(s.get("Condition", {}).get("StringEquals", {}).get("s3:object-lock-mode") == "COMPLIANCE"
                   for s in granting(w, "Allow", bypass, bundle, conditional=True)):
            fail(f"worker-policy does not let reconcile restore a COMPLIANCE lock on the bundles prefix {bundles!r}")
        # Store::abort_uploads_under (ListMultipartUploads) before each build: an upload left by a
        # builder that died is aborted, not completed.
        if not granting(w, "Allow", "s3:ListBucketMultipartUploads", archive, conditional=False):
            fail("worker-policy lacks s3:ListBucketMultipartUploads on the archive bucket (abort_uploads_under)")
    a_ = policies.get("api-policy")
    if a_:
        # The API presigns GETs of bundles and raises a recording's retention (services/evidence:
        # raise_tag, head_version, raise_protection), and checks readiness with HeadBucket. It
        # never writes, deletes or bypasses anything, and never touches staging or any other bucket.
        check_archive_denies("api-policy", a_, ["recordings/", quarantine, bundles])
        bundle = f"{ARCHIVE}/{bundles}C-1/00000000-0000-0000-0000-000000000000.tar"
        for a in ("s3:GetObject", "s3:GetObjectVersion"):
            if not granting(a_, "Allow", a, bundle, conditional=False):
                fail(f"api-policy lacks {a} on the bundles prefix {bundles!r} (download links are presigned GETs)")
        recording = f"{ARCHIVE}/recordings/{'0' * 64}.mp4"
        for a in ("s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectTagging", "s3:GetObjectVersionTagging",
                  "s3:PutObjectTagging", "s3:PutObjectVersionTagging", "s3:GetObjectRetention",
                  "s3:PutObjectRetention", "s3:GetObjectLegalHold", "s3:PutObjectLegalHold"):
            if not granting(a_, "Allow", a, recording, conditional=False):
                fail(f"api-policy lacks {a} on recordings/ (POST /v1/recordings/{{id}}/retention raises "
                     "the tag, lock and hold of the recorded version)")
        if not granting(a_, "Allow", "s3:ListBucket", ARCHIVE, conditional=False):
            fail("api-policy lacks s3:ListBucket on the archive bucket (/readyz sends HeadBucket)")
        for a in ("s3:PutObject", "s3:AbortMultipartUpload", "s3:BypassGovernanceRetention"):
            for arn in (bundle, recording, f"{ARCHIVE}/{quarantine}x"):
                if granting(a_, "Allow", a, arn):
                    fail(f"api-policy allows {a} on {arn}: the API writes no object and bypasses no lock")
                if not granting(a_, "Deny", a, arn, conditional=False):
                    fail(f"api-policy does not deny {a} on {arn}")
        for s_, acts, res in statements(a_):
            if s_["Effect"] != "Allow":
                continue
            for r in res:
                if not r.startswith(ARCHIVE + "/") and r != ARCHIVE:
                    fail(f"api-policy/{s_.get('Sid')}: {r} is not in the archive bucket: the API reads no other")
                if fnmatch.fnmatchcase(f"{ARCHIVE}/{quarantine}x", r):
                    fail(f"api-policy/{s_.get('Sid')}: {r} reaches the quarantine prefix, which the API never touches")
        for arn in (STAGING, f"{STAGING}/st01/2026/11/27/0001.MP4"):
            if any(granting(a_, "Allow", a, arn) for a in S3_ACTIONS):
                fail(f"api-policy allows something on {arn}: the API has no business in staging")
            # granting() matches the action "s3:*" only against a statement naming s3:* itself.
            if not granting(a_, "Deny", "s3:*", arn, conditional=False):
                fail(f"api-policy does not deny s3:* on {arn}")
    su = policies.get("setup-policy")
    if su:
        allowed = {a for s_, acts, res in statements(su) if s_["Effect"] == "Allow" and STAGING in res for a in acts}
        for a in ("s3:CreateBucket", "s3:PutBucketVersioning", "s3:GetBucketVersioning", "s3:PutLifecycleConfiguration"):
            if a not in allowed:
                fail(f"setup-policy lacks {a} on staging (setup.rs versions the staging bucket: staging_versioning)")
    st = policies.get("station-policy")
    if st:
        # R2.1: a station stages only under its own prefix, named by its identity (the same name
        # is its station_id and its RabbitMQ user; the worker refuses any other source).
        own = re.compile(r"arn:aws:s3:::recvault-staging/\$\{aws:(username|PrincipalTag/station_id)\}/\*")
        for s_, acts, res in statements(st):
            if s_["Effect"] != "Allow":
                continue
            for r in res:
                if r.startswith("arn:aws:s3:::recvault-staging") and not own.fullmatch(r):
                    fail(f"station-policy/{s_.get('Sid')}: {r} is not the station's own prefix "
                         "(recvault-staging/${aws:username}/*)")
            if set(acts) - {"s3:PutObject"}:
                fail(f"station-policy/{s_.get('Sid')}: stations may only PutObject, not {sorted(set(acts) - {'s3:PutObject'})}")
        if not any(s_["Effect"] == "Deny" and "s3:*" in acts and "arn:aws:s3:::recvault-archive/*" in res
                   for s_, acts, res in statements(st)):
            fail("station-policy does not deny everything on the archive")
    notes.append(f"IAM: {len(policies)} policies checked (bundles prefix {bundles!r}, quarantine prefix {quarantine!r})")


def main() -> int:
    os.chdir(ROOT)
    parse_all()
    check_config_copy()
    for path in ("k8s/base", "k8s/overlays/production"):
        docs = render(path)
        if docs is not None:
            check_rendered(path, docs)
    check_metrics()
    check_promql_syntax()
    check_iam()
    for n in notes:
        print("ok   ", n)
    for p in problems:
        print("FAIL ", p)
    print(f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
