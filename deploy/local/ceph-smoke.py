#!/usr/bin/env python3
"""Smoke test of the local Ceph RADOS Gateway (deploy/local/ceph.sh) as recvault's S3 store.

Checks, against the running gateway, the S3 behaviour recvault relies on: Object Lock (COMPLIANCE
cannot be deleted, shortened or switched to GOVERNANCE; GOVERNANCE yields to a bypass), versioning,
tagging, signature and Content-MD5 checks, presigned URL expiry, and a tag-filtered lifecycle rule
that really expires objects (a lifecycle "day" is 10 s on this cluster). Exits non-zero if any
expectation fails. Run it with the stack's venv (boto3):

    ~/.cache/recvault/venv/bin/python deploy/local/ceph-smoke.py

Endpoint and keys come from RECVAULT_S3__ENDPOINT / _ACCESS_KEY_ID / _SECRET_ACCESS_KEY (as printed
by `deploy/local/ceph.sh env`), defaulting to the local cluster's. Every run uses fresh buckets named
ceph-smoke-*; locked ones cannot be removed until their (2-minute) retention ends, so each run first
removes what earlier runs left behind.
"""
import base64
import datetime as dt
import hashlib
import hmac
import http.client
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

ENDPOINT = os.environ.get("RECVAULT_S3__ENDPOINT", "http://127.0.0.1:7480")
ACCESS = os.environ.get("RECVAULT_S3__ACCESS_KEY_ID", "recvault-local")
SECRET = os.environ.get("RECVAULT_S3__SECRET_ACCESS_KEY", "recvault-local-secret-not-for-production")
LIFECYCLE_TIMEOUT = float(os.environ.get("SMOKE_LIFECYCLE_TIMEOUT", "90"))

failures = []
T0 = time.monotonic()


def say(msg):
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


def check(ok, what, detail=""):
    say(f"{'ok  ' if ok else 'FAIL'} {what}{(': ' + str(detail)) if detail else ''}")
    if not ok:
        failures.append(what)
    return ok


def error_of(fn, *args, **kwargs):
    """(HTTP status, S3 error code) of a call expected to fail, or (200, None) if it succeeded."""
    try:
        fn(*args, **kwargs)
        return 200, None
    except ClientError as e:
        return e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"].get("Code")


def expect_refused(what, status, code, fn, *args, **kwargs):
    got = error_of(fn, *args, **kwargs)
    return check(got[0] == status and (code is None or got[1] == code), what, f"got {got}, want ({status}, {code})")


def client(secret=SECRET, **cfg):
    # Old RGW (Ceph 16) predates the SDKs' default flexible checksums; send checksums only where
    # S3 requires them, like recvault does (RequestChecksumCalculation::WhenRequired).
    base = dict(
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        retries={"max_attempts": 1},
        connect_timeout=5,
        read_timeout=60,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    base.update(cfg)
    return boto3.client("s3", endpoint_url=ENDPOINT, region_name="us-east-1",
                        aws_access_key_id=ACCESS, aws_secret_access_key=secret, config=Config(**base))


s3 = client()
RUN = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")


def now():
    return dt.datetime.now(dt.timezone.utc)


def remove_bucket(name):
    """Best effort: delete every version (bypassing GOVERNANCE) and the bucket. False if something stays."""
    try:
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=name):
            for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
                try:
                    s3.delete_object(Bucket=name, Key=v["Key"], VersionId=v["VersionId"], BypassGovernanceRetention=True)
                except ClientError:
                    pass
        s3.delete_bucket(Bucket=name)
        return True
    except ClientError:
        return False


def cleanup_earlier_runs():
    left = [b["Name"] for b in s3.list_buckets().get("Buckets", []) if b["Name"].startswith("ceph-smoke-")]
    removed = sum(remove_bucket(b) for b in left)
    if left:
        say(f"removed {removed} of {len(left)} buckets left by earlier runs (locked ones stay until their retention ends)")


# ---------------------------------------------------------------------------------------------------

def test_auth_and_integrity(bucket):
    expect_refused("a wrong secret is refused (403 SignatureDoesNotMatch)", 403, "SignatureDoesNotMatch",
                   client(secret=SECRET + "x").list_buckets)
    wrong_md5 = base64.b64encode(hashlib.md5(b"other bytes").digest()).decode()
    expect_refused("a wrong Content-MD5 is refused (400 BadDigest)", 400, "BadDigest",
                   s3.put_object, Bucket=bucket, Key="md5", Body=b"these bytes", ContentMD5=wrong_md5)
    right_md5 = base64.b64encode(hashlib.md5(b"these bytes").digest()).decode()
    check(error_of(s3.put_object, Bucket=bucket, Key="md5", Body=b"these bytes", ContentMD5=right_md5)[0] == 200,
          "the right Content-MD5 is accepted")

    s3.put_object(Bucket=bucket, Key="presigned", Body=b"hello")
    fresh = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "presigned"}, ExpiresIn=60)
    check(http_status(fresh) == 200, "a valid presigned URL works")
    short = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "presigned"}, ExpiresIn=1)
    time.sleep(2.2)
    check(http_status(short) == 403, "an expired presigned URL is refused (403)", http_status(short))
    tampered = fresh.replace("Signature=", "Signature=0")
    check(http_status(tampered) == 403, "a presigned URL with a wrong signature is refused (403)")


def http_body(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read()


def http_status(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_object_lock(bucket):
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    conf = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    check(conf.get("ObjectLockEnabled") == "Enabled", "bucket created with ObjectLockEnabledForBucket", conf)
    check(s3.get_bucket_versioning(Bucket=bucket).get("Status") == "Enabled", "Object Lock turned versioning on")

    # tagging
    v1 = s3.put_object(Bucket=bucket, Key="rec.mp4", Body=b"first", Tagging="retention=2y&station=st-01")["VersionId"]
    tags = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key="rec.mp4")["TagSet"]}
    check(tags == {"retention": "2y", "station": "st-01"}, "PutObject with tags, GetObjectTagging reads them back", tags)
    check(s3.head_object(Bucket=bucket, Key="rec.mp4").get("TagCount") == 2, "HeadObject reports the tag count")

    # versioning
    v2 = s3.put_object(Bucket=bucket, Key="rec.mp4", Body=b"second")["VersionId"]
    check(v1 and v2 and v1 != v2, "a second PutObject makes a second version", (v1, v2))
    old = s3.get_object(Bucket=bucket, Key="rec.mp4", VersionId=v1)["Body"].read()
    check(old == b"first", "GetObject of the first version returns its bytes")
    versions = [v["VersionId"] for v in s3.list_object_versions(Bucket=bucket, Prefix="rec.mp4").get("Versions", [])]
    check(sorted(versions) == sorted([v1, v2]), "ListObjectVersions lists both versions")

    # COMPLIANCE
    until = (now() + dt.timedelta(minutes=2)).replace(microsecond=0)
    s3.put_object_retention(Bucket=bucket, Key="rec.mp4", VersionId=v1,
                            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until})
    ret = s3.get_object_retention(Bucket=bucket, Key="rec.mp4", VersionId=v1)["Retention"]
    check(ret["Mode"] == "COMPLIANCE" and ret["RetainUntilDate"] == until, "GetObjectRetention reads COMPLIANCE back", ret)
    head = s3.head_object(Bucket=bucket, Key="rec.mp4", VersionId=v1)
    check(head.get("ObjectLockMode") == "COMPLIANCE" and head.get("ObjectLockRetainUntilDate") == until,
          "HeadObject shows the lock mode and retain-until date",
          (head.get("ObjectLockMode"), head.get("ObjectLockRetainUntilDate")))
    expect_refused("DeleteObject of a COMPLIANCE version is refused", 403, "AccessDenied",
                   s3.delete_object, Bucket=bucket, Key="rec.mp4", VersionId=v1)
    expect_refused("... also with the governance bypass", 403, "AccessDenied",
                   s3.delete_object, Bucket=bucket, Key="rec.mp4", VersionId=v1, BypassGovernanceRetention=True)
    expect_refused("shortening a COMPLIANCE retention is refused", 403, "AccessDenied",
                   s3.put_object_retention, Bucket=bucket, Key="rec.mp4", VersionId=v1,
                   Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until - dt.timedelta(seconds=30)})
    expect_refused("switching COMPLIANCE to GOVERNANCE is refused", 403, "AccessDenied",
                   s3.put_object_retention, Bucket=bucket, Key="rec.mp4", VersionId=v1,
                   Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until + dt.timedelta(days=1)},
                   BypassGovernanceRetention=True)
    check(error_of(s3.put_object_retention, Bucket=bucket, Key="rec.mp4", VersionId=v1,
                   Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until + dt.timedelta(seconds=30)})[0] == 200,
          "extending a COMPLIANCE retention is allowed")
    ret = s3.get_object_retention(Bucket=bucket, Key="rec.mp4", VersionId=v1)["Retention"]
    check(ret["Mode"] == "COMPLIANCE" and ret["RetainUntilDate"] == until + dt.timedelta(seconds=30),
          "the retention is still COMPLIANCE, extended", ret)
    marker = s3.delete_object(Bucket=bucket, Key="rec.mp4")
    check(marker.get("DeleteMarker") is True, "a plain DeleteObject only adds a delete marker", marker.get("DeleteMarker"))
    check(s3.get_object(Bucket=bucket, Key="rec.mp4", VersionId=v1)["Body"].read() == b"first",
          "the locked version is still readable behind the delete marker")

    # legal hold
    s3.put_object_legal_hold(Bucket=bucket, Key="rec.mp4", VersionId=v2, LegalHold={"Status": "ON"})
    check(s3.get_object_legal_hold(Bucket=bucket, Key="rec.mp4", VersionId=v2)["LegalHold"]["Status"] == "ON",
          "legal hold ON reads back")
    expect_refused("DeleteObject of a version under legal hold is refused", 403, "AccessDenied",
                   s3.delete_object, Bucket=bucket, Key="rec.mp4", VersionId=v2, BypassGovernanceRetention=True)
    s3.put_object_legal_hold(Bucket=bucket, Key="rec.mp4", VersionId=v2, LegalHold={"Status": "OFF"})
    check(error_of(s3.delete_object, Bucket=bucket, Key="rec.mp4", VersionId=v2)[0] in (200, 204),
          "after legal hold OFF (no retention) the version can be deleted")

    # GOVERNANCE
    g = s3.put_object(Bucket=bucket, Key="gov", Body=b"g")["VersionId"]
    s3.put_object_retention(Bucket=bucket, Key="gov", VersionId=g,
                            Retention={"Mode": "GOVERNANCE", "RetainUntilDate": now() + dt.timedelta(days=1)})
    expect_refused("DeleteObject of a GOVERNANCE version without bypass is refused", 403, "AccessDenied",
                   s3.delete_object, Bucket=bucket, Key="gov", VersionId=g)
    check(error_of(s3.delete_object, Bucket=bucket, Key="gov", VersionId=g, BypassGovernanceRetention=True)[0] in (200, 204),
          "DeleteObject of a GOVERNANCE version with the bypass succeeds")

    # lock headers on PutObject itself (S3 wants a Content-MD5 or checksum with them)
    st = error_of(s3.put_object, Bucket=bucket, Key="locked-at-put", Body=b"x", ObjectLockMode="COMPLIANCE",
                  ObjectLockRetainUntilDate=until)
    say(f"info PutObject with lock headers and no Content-MD5/checksum: {st}")
    md5 = base64.b64encode(hashlib.md5(b"x").digest()).decode()
    st = error_of(s3.put_object, Bucket=bucket, Key="locked-at-put", Body=b"x", ObjectLockMode="COMPLIANCE",
                  ObjectLockRetainUntilDate=until, ContentMD5=md5)
    check(st[0] == 200, "PutObject with lock headers (and Content-MD5) is accepted", st)
    head = s3.head_object(Bucket=bucket, Key="locked-at-put")
    check(head.get("ObjectLockMode") == "COMPLIANCE", "... and the object is locked", head.get("ObjectLockMode"))


def test_informational(bucket):
    """Behaviour worth knowing, reported but not asserted."""
    s3.put_object(Bucket=bucket, Key="src", Body=b"one")
    stale = s3.head_object(Bucket=bucket, Key="src")["ETag"]
    s3.put_object(Bucket=bucket, Key="src", Body=b"two")
    st = error_of(s3.copy_object, Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"},
                  CopySourceIfMatch=stale)
    say(f"info CopyObject with a stale CopySourceIfMatch: {st} (412 = honoured)")
    bad_sha = base64.b64encode(hashlib.sha256(b"not the body").digest()).decode()
    st = error_of(s3.put_object, Bucket=bucket, Key="sha", Body=b"body", ChecksumSHA256=bad_sha)
    say(f"info PutObject with a wrong x-amz-checksum-sha256: {st} (400 = checked)")
    for label, extra in (("TaggingDirective=REPLACE", {}),
                         ("TaggingDirective=REPLACE + MetadataDirective=REPLACE",
                          {"MetadataDirective": "REPLACE", "Metadata": {"m": "1"}})):
        s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "src"},
                       TaggingDirective="REPLACE", Tagging="retention=2y", **extra)
        raw = http_body(s3.generate_presigned_url("get_object_tagging", Params={"Bucket": bucket, "Key": "copy"}))
        say(f"info CopyObject with {label} and Tagging retention=2y: GetObjectTagging then answers "
            f"{raw[raw.find(b'<TagSet'):][:80] if raw else 'an EMPTY body'} (want the retention tag)")
    # the SDKs' default since early 2025: a CRC32 on every PutObject
    st = error_of(client(request_checksum_calculation="when_supported").put_object,
                  Bucket=bucket, Key="crc", Body=b"body")
    say(f"info PutObject with the SDK default checksums (when_supported, CRC32 header): {st}")
    st = put_aws_chunked_with_trailer(bucket, "trailer", b"streamed body " * 64)
    say(f"info PutObject as aws-chunked with a CRC32 trailer (STREAMING-UNSIGNED-PAYLOAD-TRAILER, what the AWS "
        f"SDKs send for a streaming body with a checksum): {st} (200 = supported)")


def put_aws_chunked_with_trailer(bucket, key, payload):
    """A PutObject framed as aws-chunked with a trailing x-amz-checksum-crc32, signed by hand (SigV4)."""
    url = urllib.parse.urlsplit(ENDPOINT)
    crc = base64.b64encode(zlib.crc32(payload).to_bytes(4, "big")).decode()
    body = f"{len(payload):x}\r\n".encode() + payload + f"\r\n0\r\nx-amz-checksum-crc32:{crc}\r\n\r\n".encode()
    t = dt.datetime.now(dt.timezone.utc)
    amzdate, day = t.strftime("%Y%m%dT%H%M%SZ"), t.strftime("%Y%m%d")
    h = {"host": url.netloc, "content-encoding": "aws-chunked", "content-length": str(len(body)),
         "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "x-amz-date": amzdate,
         "x-amz-decoded-content-length": str(len(payload)), "x-amz-trailer": "x-amz-checksum-crc32",
         "x-amz-sdk-checksum-algorithm": "CRC32"}
    names = sorted(h)
    path = f"/{bucket}/{key}"
    canonical = "\n".join(["PUT", path, "", "".join(f"{k}:{h[k]}\n" for k in names), ";".join(names),
                           h["x-amz-content-sha256"]])
    scope = f"{day}/us-east-1/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amzdate, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    k = ("AWS4" + SECRET).encode()
    for part in (day, "us-east-1", "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    h["authorization"] = (f"AWS4-HMAC-SHA256 Credential={ACCESS}/{scope}, SignedHeaders={';'.join(names)}, "
                          f"Signature={hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()}")
    conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=30)
    conn.request("PUT", path, body=body, headers=h)
    r = conn.getresponse()
    answer = r.read().decode(errors="replace")
    code = answer.split("<Code>")[1].split("</Code>")[0] if "<Code>" in answer else None
    if r.status == 200 and s3.get_object(Bucket=bucket, Key=key)["Body"].read() != payload:
        code = "stored bytes differ from the payload"
    return r.status, code


def test_lifecycle(plain, locked):
    s3.create_bucket(Bucket=plain)
    s3.create_bucket(Bucket=locked, ObjectLockEnabledForBucket=True)
    rule = {"Rules": [{"ID": "expire-retention-2y", "Status": "Enabled",
                       "Filter": {"Tag": {"Key": "retention", "Value": "2y"}},
                       "Expiration": {"Days": 1}}]}
    for b in (plain, locked):
        s3.put_bucket_lifecycle_configuration(Bucket=b, LifecycleConfiguration=rule)
    got = s3.get_bucket_lifecycle_configuration(Bucket=plain)["Rules"][0]
    check(got.get("Filter", {}).get("Tag") == {"Key": "retention", "Value": "2y"},
          "the lifecycle rule keeps its Tag filter", got.get("Filter"))

    until = now() + dt.timedelta(minutes=2)
    for b in (plain, locked):
        s3.put_object(Bucket=b, Key="tagged", Body=b"t", Tagging="retention=2y")
        s3.put_object(Bucket=b, Key="untagged", Body=b"u")
        s3.put_object(Bucket=b, Key="other-tag", Body=b"o", Tagging="retention=10y")
    tagged_v = s3.head_object(Bucket=locked, Key="tagged")["VersionId"]
    s3.put_object_retention(Bucket=locked, Key="tagged", VersionId=tagged_v,
                            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until})
    t_put = time.monotonic()
    say(f"waiting for the lifecycle (a day is 10 s; up to {LIFECYCLE_TIMEOUT:.0f} s)")

    gone = {}
    while len(gone) < 2 and time.monotonic() - t_put < LIFECYCLE_TIMEOUT:
        for b in (plain, locked):
            if b not in gone and error_of(s3.head_object, Bucket=b, Key="tagged")[0] == 404:
                gone[b] = time.monotonic() - t_put
                say(f"     {b}/tagged expired after {gone[b]:.1f} s")
        time.sleep(1)
    check(plain in gone, "unversioned bucket: the tagged object expired", f"{gone.get(plain, -1):.1f} s")
    check(locked in gone, "versioned + locked bucket: the tagged object's current version expired",
          f"{gone.get(locked, -1):.1f} s")

    # give the lifecycle another couple of rounds to do anything wrong
    time.sleep(22)
    for b in (plain, locked):
        check(error_of(s3.head_object, Bucket=b, Key="untagged")[0] == 200, f"{b}: the untagged object stays")
        check(error_of(s3.head_object, Bucket=b, Key="other-tag")[0] == 200, f"{b}: the retention=10y object stays")
    vs = s3.list_object_versions(Bucket=plain, Prefix="tagged")
    check(not vs.get("Versions") and not vs.get("DeleteMarkers"), "unversioned bucket: the object is really gone")
    vs = s3.list_object_versions(Bucket=locked, Prefix="tagged")
    markers = [m for m in vs.get("DeleteMarkers", []) if m["IsLatest"]]
    versions = [v["VersionId"] for v in vs.get("Versions", [])]
    check(len(markers) == 1, "versioned bucket: expiry put a delete marker on top", len(markers))
    check(versions == [tagged_v], "versioned bucket: the locked version itself stays (noncurrent)", versions)
    return [plain] if plain in gone else []


def main():
    say(f"S3 endpoint {ENDPOINT}, user {ACCESS}")
    cleanup_earlier_runs()
    plain = f"ceph-smoke-{RUN}-plain"
    s3.create_bucket(Bucket=plain)
    test_auth_and_integrity(plain)
    test_object_lock(f"ceph-smoke-{RUN}-lock")
    test_informational(plain)
    test_lifecycle(f"ceph-smoke-{RUN}-lc", f"ceph-smoke-{RUN}-lc-lock")
    for b in (plain, f"ceph-smoke-{RUN}-lc"):
        remove_bucket(b)
    if failures:
        say(f"{len(failures)} expectation(s) failed: " + "; ".join(failures))
        return 1
    say("all expectations met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
