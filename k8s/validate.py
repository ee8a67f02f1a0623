#!/usr/bin/env python3
"""Checks the deployment material against the code it deploys.

    python3 k8s/validate.py            (from the repository root; needs PyYAML)

- every YAML/JSON file under k8s/ and deploy/{grafana,prometheus,s3} parses;
- k8s/base/recvault.toml is a verbatim copy of pipeline-config/recvault.toml (kustomize cannot
  read files outside its directory, so the base carries a copy);
- the kustomizations render (`kubectl kustomize`, skipped when kubectl is missing), and in the
  rendered objects: every RECVAULT_* variable is documented in pipeline-config/recvault.toml,
  every secret key used is in the Secret template, the spool emptyDir holds concurrency x 4 GiB,
  terminationGracePeriodSeconds exceeds shutdown_grace_secs, probes and metrics use the port of
  worker.metrics_addr, the KEDA ScaledObject watches <amqp.prefix>.jobs.work with a target of
  worker.concurrency, the staging sweep CronJob runs one sweep at a time, and every pod (Deployment,
  Job, CronJob) meets the restricted security settings;
- every metric name in the dashboard and the alerts is declared in services/worker/src/metrics.rs,
  with label values from the fixed sets of the code (outcome, stage, capability);
- the IAM policies only name real S3 actions and keep the worker's archive denies;
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
    files = sorted((ROOT / "k8s").rglob("*.yaml")) + sorted((ROOT / "deploy" / "prometheus").glob("*.yaml"))
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
        notes.append(f"kubectl not found: {path} not rendered")
        return None
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

    for job in by_kind.get("Job", []):
        owner = f"Job/{job['metadata']['name']}"
        pod = job["spec"]["template"]["spec"]
        check_pod_security(owner, pod)
        for c in pod["containers"]:
            check_env(owner, env_of(c))
            if c.get("args", [])[:1] != ["setup"]:
                fail(f"{path}: {owner}: expected `recvault setup`")

    for cj in by_kind.get("CronJob", []):
        owner = f"CronJob/{cj['metadata']['name']}"
        pod = cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        check_pod_security(owner, pod)
        for c in pod["containers"]:
            check_env(owner, env_of(c))
            if c.get("args", [])[:2] != ["staging", "sweep"]:
                fail(f"{path}: {owner}: expected `recvault staging sweep`")
        if cj["spec"].get("concurrencyPolicy") != "Forbid":
            fail(f"{path}: {owner}: two sweeps at once would race each other: concurrencyPolicy must be Forbid")

    prepare = [f"{d['kind']}/{d['metadata']['name']}" for d in docs
               if d["metadata"].get("labels", {}).get("recvault.io/phase") == "prepare"]
    for needed in ("Namespace", "ConfigMap", "Job", "ServiceAccount"):
        if not any(p.startswith(needed + "/") for p in prepare):
            fail(f"{path}: no {needed} carries recvault.io/phase=prepare (needed by the setup step)")
    notes.append(f"{path}: rendered {len(docs)} objects; phase=prepare selects {', '.join(prepare)}")


# --- metrics ----------------------------------------------------------------------------------

def declared_metrics() -> dict[str, str]:
    src = METRICS_RS.read_text()
    kinds: dict[str, str] = {}
    for m in re.finditer(r'(HistogramOpts::new|Opts::new|IntCounter::new|IntGauge::new)\(\s*"(recvault_[a-z0-9_]+)"', src):
        kinds[m.group(2)] = "histogram" if m.group(1) == "HistogramOpts::new" else "other"
    return kinds


def series_names(kinds: dict[str, str]) -> set[str]:
    names = set()
    for n, k in kinds.items():
        names |= {n + s for s in ("_bucket", "_sum", "_count")} if k == "histogram" else {n}
    return names


def label_sets() -> dict[str, set[str]]:
    src = METRICS_RS.read_text()
    outcomes = set(re.findall(r'Self::\w+ => "([a-z_]+)"', src.split("impl Outcome")[1].split("pub const STAGES")[0]))
    stages = set(re.findall(r'"([a-z]+)"', re.search(r"pub const STAGES[^;]+;", src).group(0)))
    caps_src = CAPABILITIES_RS.read_text()
    code_fn = re.search(r"pub fn code\(self\) -> &'static str \{(.*?)\n    \}", caps_src, re.S).group(1)
    capabilities = set(re.findall(r'=> "([a-z_]+)"', code_fn))
    return {"outcome": outcomes, "stage": stages, "capability": capabilities}


def expressions() -> list[tuple[str, str]]:
    exprs = []
    alerts = yaml.safe_load((ROOT / "deploy" / "prometheus" / "recvault-alerts.yaml").read_text())
    for g in alerts["spec"]["groups"]:
        for r in g["rules"]:
            exprs.append((f"alert {r['alert']}", r["expr"]))
            if "requirement" not in r.get("labels", {}) and r["labels"].get("severity") != "info":
                notes.append(f"alert {r['alert']} cites no requirement")
    dash = json.loads((ROOT / "deploy" / "grafana" / "recvault-ingest.json").read_text())
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
    labels = label_sets()
    if "86400" not in METRICS_RS.read_text() and "24.0 * 3600.0" not in METRICS_RS.read_text():
        fail("recvault_upload_delay_seconds has no 24 h bucket: the R17.1 panels and alert need le=86400")
    used_metrics = set()
    for where, e in expressions():
        for name in re.findall(r"\b(recvault_[a-z0-9_]+)\b", e):
            used_metrics.add(name)
            if name not in names:
                fail(f"{where}: unknown metric {name} (declared: {', '.join(sorted(names))})")
        for label, values in labels.items():
            for op, val in re.findall(rf'\b{label}\s*(=~|!~|!=|=)\s*"([^"]*)"', e):
                for v in val.split("|"):
                    if v and v not in values:
                        fail(f"{where}: {label}={v!r} is not a value the code emits ({', '.join(sorted(values))})")
    unused = {n for n in kinds if not any(u.startswith(n) for u in used_metrics)}
    if unused:
        fail(f"metrics declared but shown nowhere: {', '.join(sorted(unused))}")
    notes.append(f"{len(expressions())} PromQL expressions use only {len(kinds)} declared metrics")


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
        allowed_on_archive = {a for s, acts, res in statements(w) if s["Effect"] == "Allow"
                              for r in res if r.startswith(archive) for a in acts}
        denied_on_archive = {a for s, acts, res in statements(w) if s["Effect"] == "Deny" and "Condition" not in s
                             for r in res if r.startswith(archive) for a in acts}
        for a in ("s3:DeleteObject", "s3:DeleteObjectVersion", "s3:BypassGovernanceRetention",
                  "s3:PutBucketObjectLockConfiguration", "s3:PutBucketVersioning", "s3:PutLifecycleConfiguration",
                  "s3:DeleteBucket"):
            if a in allowed_on_archive:
                fail(f"worker-policy allows {a} on the archive (R21.1)")
            if a not in denied_on_archive:
                fail(f"worker-policy does not explicitly deny {a} on the archive (R21.1)")
        for a in ("s3:GetObject", "s3:PutObject", "s3:PutObjectTagging", "s3:GetObjectTagging",
                  "s3:PutObjectRetention", "s3:GetObjectRetention", "s3:PutObjectLegalHold", "s3:GetObjectLegalHold",
                  "s3:AbortMultipartUpload", "s3:ListBucket", "s3:GetBucketObjectLockConfiguration",
                  "s3:GetBucketVersioning", "s3:GetLifecycleConfiguration"):
            if a not in allowed_on_archive:
                fail(f"worker-policy lacks {a} on the archive, which services/store/src uses")
        quarantine = toml_defaults()["s3"]["quarantine_prefix"]
        if not any(r == f"{archive}/{quarantine}*" for s, acts, res in statements(w) for r in res):
            fail(f"worker-policy does not cover the quarantine prefix {quarantine!r} of recvault.toml")
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
