#!/usr/bin/env python3
"""Checks the deployment material against the code it deploys.

    python3 k8s/validate.py            (from the repository root; needs PyYAML)

- every YAML/JSON file under k8s/ and deploy/{grafana,prometheus,s3} parses;
- k8s/base/recvault.toml is a verbatim copy of pipeline-config/recvault.toml (kustomize cannot
  read files outside its directory, so the base carries a copy);
- the kustomizations render (`kubectl kustomize`, skipped when kubectl is missing;
  deploy/local/validate.sh puts the kubectl of deploy/local/tools.sh first on PATH), and in the
  rendered objects: every RECVAULT_* variable is documented in pipeline-config/recvault.toml,
  every secret key used is in the Secret template, the spool emptyDir holds concurrency x 4 GiB,
  terminationGracePeriodSeconds exceeds shutdown_grace_secs, probes and metrics use the port of
  worker.metrics_addr, the KEDA ScaledObject watches <amqp.prefix>.jobs.work with a target of
  worker.concurrency, each CronJob runs its known recvault command one run at a time, only the
  setup Job holds the database owner role and the setup identity, and every pod (Deployment, Job,
  CronJob) meets the restricted security settings;
- every metric name in the dashboard and the alerts is declared in services/worker/src/metrics.rs
  (or is a recording rule of the alerts file, or a process_* series of the process collector the
  worker registers), with label values from the fixed sets of the code (outcome, stage, queue,
  placement, capability), and every declared metric is shown somewhere;
- the IAM policies only name real S3 actions, keep the worker's archive denies (the governance
  bypass only into COMPLIANCE) and confine each station to its own staging prefix;
- with PROMQL_CHECK=<path to a program that reads one PromQL expression per line on stdin and exits
  non-zero on a syntax error>, every expression is parsed too.
Exits 1 on the first class of failure, after printing every problem found.
"""

from __future__ import annotations

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
    for d in yaml.safe_load_all((ROOT / "k8s" / "base" / "secret.template.yaml").read_text()):
        if d:
            keys = set((d.get("stringData") or {}).keys())
            # keys documented as commented-out optional entries count too
            keys |= set(re.findall(r"#\s*(RECVAULT_[A-Z0-9_]+):", (ROOT / "k8s" / "base" / "secret.template.yaml").read_text()))
            template_keys[d["metadata"]["name"]] = keys

    by_kind: dict[str, list[dict]] = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    configmaps = {c["metadata"]["name"]: c for c in by_kind.get("ConfigMap", [])}

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

    def setting(env: dict[str, str | None], section: str, key: str):
        var = f"RECVAULT_{section.upper()}__{key.upper()}"
        return env[var] if env.get(var) is not None else defaults[section][key]

    for dep in by_kind.get("Deployment", []):
        owner = f"Deployment/{dep['metadata']['name']}"
        pod = dep["spec"]["template"]["spec"]
        check_pod_security(owner, pod)
        c = pod["containers"][0]
        env = env_of(c)
        check_env(owner, env)
        concurrency = int(setting(env, "worker", "concurrency"))
        grace = int(setting(env, "worker", "shutdown_grace_secs"))
        addr = str(setting(env, "worker", "metrics_addr"))
        host, port = addr.rsplit(":", 1)
        if host in ("127.0.0.1", "localhost", "[::1]"):
            fail(f"{path}: {owner}: worker.metrics_addr {addr} is loopback: probes and Prometheus cannot reach it")
        ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
        if ports.get("metrics") != int(port):
            fail(f"{path}: {owner}: containerPort 'metrics' {ports.get('metrics')} != metrics_addr port {port}")
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            if probe not in c:
                fail(f"{path}: {owner}: missing {probe}")
        if c.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/healthz":
            fail(f"{path}: {owner}: liveness must be /healthz")
        if c.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/readyz":
            fail(f"{path}: {owner}: readiness must be /readyz")
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

    def check_identity(owner: str, pod: dict, setup: bool) -> None:
        # R21.1: only `recvault setup` may configure buckets (setup IAM role) and change the schema
        # (database owner role); the worker and its CronJobs run as the worker role and the
        # service database role.
        sa = pod.get("serviceAccountName")
        want = "recvault-setup" if setup else "recvault-worker"
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

    for dep in by_kind.get("Deployment", []):
        check_identity(f"Deployment/{dep['metadata']['name']}", dep["spec"]["template"]["spec"], setup=False)

    for job in by_kind.get("Job", []):
        owner = f"Job/{job['metadata']['name']}"
        pod = job["spec"]["template"]["spec"]
        check_pod_security(owner, pod)
        check_identity(owner, pod, setup=True)
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
        check_identity(owner, pod, setup=False)
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


def declared_metrics() -> dict[str, str]:
    """Every metric name passed to a constructor in metrics.rs: `Opts::new("recvault_...")`,
    `HistogramOpts::new(...)`, `IntCounter::new(...)`, `Gauge::with_opts(...)`, the
    `register_*!(...)` macros, ... A name is a histogram when its constructor is HistogramOpts or
    a `register_histogram*!` macro."""
    src = strip_comments(METRICS_RS.read_text())
    kinds: dict[str, str] = {}
    for m in re.finditer(r'\b(\w+)(?:::new|::with_opts|!)\(\s*"(recvault_[a-z0-9_]+)"', src):
        ctor, name = m.group(1), m.group(2)
        kinds[name] = "histogram" if ctor.startswith(("HistogramOpts", "register_histogram")) else "other"
    return kinds


def series_names(kinds: dict[str, str]) -> set[str]:
    names = set()
    for n, k in kinds.items():
        names |= {n + s for s in ("_bucket", "_sum", "_count")} if k == "histogram" else {n}
    return names


def const_strings(src: str, name: str) -> set[str] | None:
    m = re.search(rf"pub const {name}\b[^=]*=\s*\[(.*?)\];", src, re.S)
    return set(re.findall(r'"([a-z0-9_]+)"', m.group(1))) if m else None


def label_sets() -> dict[str, set[str]]:
    src = strip_comments(METRICS_RS.read_text())
    sets: dict[str, set[str]] = {}
    # outcome: the string arms of the fn that labels an Outcome (whatever it is called), inside
    # `impl Outcome { ... }`.
    impl = re.search(r"impl\s+Outcome\s*\{", src)
    if impl:
        body = rust_block(src, impl.start())
        sets["outcome"] = set(re.findall(r'=>\s*"([a-z0-9_]+)"', body))
    if not sets.get("outcome"):
        fail("services/worker/src/metrics.rs: no Outcome labels found (parser out of date?)")
    for label, const in (("stage", "STAGES"), ("queue", "QUEUES"), ("placement", "PLACEMENTS")):
        values = const_strings(src, const)
        if values:
            sets[label] = values
        else:
            notes.append(f"metrics.rs has no const {const}: {label} values not checked")
    caps_src = strip_comments(CAPABILITIES_RS.read_text())
    code_fn = re.search(r"fn code\(self\)\s*->\s*&'static str", caps_src)
    if code_fn:
        sets["capability"] = set(re.findall(r'=>\s*"([a-z0-9_]+)"', rust_block(caps_src, code_fn.start())))
    else:
        fail("services/store/src/capabilities.rs: no `fn code(self) -> &'static str` (parser out of date?)")
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


def check_metrics() -> None:
    kinds = declared_metrics()
    if not kinds:
        fail("no metric found in services/worker/src/metrics.rs (parser out of date?)")
        return
    names = series_names(kinds)
    records = recording_rules()
    labels = label_sets()
    worker_src = "".join(f.read_text() for f in (ROOT / "services" / "worker" / "src").rglob("*.rs"))
    process_collector = "ProcessCollector" in worker_src
    if "86400" not in METRICS_RS.read_text() and "24.0 * 3600.0" not in METRICS_RS.read_text():
        fail("recvault_upload_delay_seconds has no 24 h bucket: the R17.1 panels and alert need le=86400")
    used_metrics = set()
    for where, e in expressions():
        # A recording rule's name (namespace:recvault_x:count) is not a metric of the code.
        bare = e
        for r in records:
            bare = bare.replace(r, "")
        for name in re.findall(r"(?<![:\w])(recvault_[a-z0-9_]+)\b", bare):
            used_metrics.add(name)
            if name not in names:
                fail(f"{where}: unknown metric {name} (declared: {', '.join(sorted(names))})")
        for name in re.findall(r"(?<![:\w])(process_[a-z0-9_]+)\b", bare):
            if name not in PROCESS_METRICS:
                fail(f"{where}: {name} is not a series of the process collector")
            elif not process_collector:
                fail(f"{where}: uses {name}, but services/worker/src registers no ProcessCollector")
        for label, values in labels.items():
            for op, val in re.findall(rf'\b{label}\s*(=~|!~|!=|=)\s*"([^"]*)"', e):
                for v in val.split("|"):
                    if v and v not in values:
                        fail(f"{where}: {label}={v!r} is not a value the code emits ({', '.join(sorted(values))})")
    unused = {n for n in kinds if not any(u.startswith(n) for u in used_metrics)}
    if unused:
        fail(f"metrics declared but shown nowhere: {', '.join(sorted(unused))}")
    notes.append(f"{len(expressions())} PromQL expressions use only {len(kinds)} declared metrics"
                 + (f" and the recording rules {', '.join(sorted(records))}" if records else ""))
    notes.append("label values checked: " + "; ".join(f"{k} ({len(v)})" for k, v in sorted(labels.items())))


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


def check_iam() -> None:
    d = ROOT / "deploy" / "s3"
    policies = {f.stem: json.loads(f.read_text()) for f in d.glob("*-policy.json")}
    for name in ("worker-policy", "station-policy", "setup-policy"):
        if name not in policies:
            fail(f"deploy/s3/{name}.json missing")
    for name, p in policies.items():
        if p.get("Version") != "2012-10-17":
            fail(f"{name}: Version must be 2012-10-17")
        sids = [s.get("Sid") for s in p["Statement"]]
        if len(set(sids)) != len(sids):
            fail(f"{name}: duplicate Sid")
        for s, acts, res in statements(p):
            if s["Effect"] not in ("Allow", "Deny"):
                fail(f"{name}/{s.get('Sid')}: bad Effect")
            for a in acts:
                if a not in S3_ACTIONS:
                    fail(f"{name}/{s.get('Sid')}: {a} is not an S3 action this checker knows")
            for r in res:
                if not r.startswith("arn:aws:s3:::"):
                    fail(f"{name}/{s.get('Sid')}: resource {r} is not an S3 ARN")
    w = policies.get("worker-policy")
    if w:
        archive = "arn:aws:s3:::recvault-archive"
        staging = "arn:aws:s3:::recvault-staging"

        def on(bucket: str, effect: str, conditional: bool | None) -> set[str]:
            return {a for s, acts, res in statements(w) if s["Effect"] == effect
                    and (conditional is None or ("Condition" in s) == conditional)
                    for r in res if r == bucket or r.startswith(bucket + "/") for a in acts}

        allowed_on_archive = on(archive, "Allow", None)
        allowed_unconditionally = on(archive, "Allow", False)
        denied_on_archive = on(archive, "Deny", False)
        # R21.1: the archive only grows and only setup configures it.
        for a in ("s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutBucketObjectLockConfiguration",
                  "s3:PutBucketVersioning", "s3:PutLifecycleConfiguration", "s3:DeleteBucket"):
            if a in allowed_on_archive:
                fail(f"worker-policy allows {a} on the archive (R21.1)")
            if a not in denied_on_archive:
                fail(f"worker-policy does not explicitly deny {a} on the archive (R21.1)")
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
    su = policies.get("setup-policy")
    if su:
        staging = "arn:aws:s3:::recvault-staging"
        allowed = {a for s_, acts, res in statements(su) if s_["Effect"] == "Allow" and staging in res for a in acts}
        for a in ("s3:CreateBucket", "s3:PutBucketVersioning", "s3:GetBucketVersioning", "s3:PutLifecycleConfiguration"):
            if a not in allowed:
                fail(f"setup-policy lacks {a} on staging (setup.rs versions the staging bucket: staging_versioning)")
        for a in ("s3:PutObjectTagging", "s3:PutObjectVersionTagging"):
            if not any(s_["Effect"] == "Deny" and a in acts and "s3:ExistingObjectTag/retention" in
                       json.dumps(s_.get("Condition", {})) for s_, acts, res in statements(w)):
                fail(f"worker-policy does not deny lowering a permanent retention tag with {a} (R19.1)")
        quarantine = toml_defaults()["s3"]["quarantine_prefix"]
        if not any(r == f"{archive}/{quarantine}*" for s, acts, res in statements(w) for r in res):
            fail(f"worker-policy does not cover the quarantine prefix {quarantine!r} of recvault.toml")
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
    notes.append(f"IAM: {len(policies)} policies checked")


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
