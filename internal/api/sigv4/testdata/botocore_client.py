"""Sign requests with botocore and send them to the sigv4 test server.

Reads one JSON object on stdin:
  {"url": "http://127.0.0.1:PORT", "akid": ..., "secret": ..., "region": ...,
   "service": ..., "cases": [{"name", "method", "path", "query", "headers",
   "body", "transport"}], "client": bool, "sign_only": bool, "time": str}
Each case is signed with botocore.auth.SigV4Auth over an AWSRequest whose url
is url + path + "?" + query, and sent
  - with transport "raw" (the default): by http.client, exactly as shaped
    (raw path and raw query);
  - with transport "urllib3": by botocore's own HTTP session (URLLib3Session,
    what boto3 clients use), which may rewrite the request target (it
    upper-cases percent-escapes and encodes bytes that are not allowed).
With "client" set, the real botocore "backup" client then makes a few calls.
With "sign_only" set nothing is sent: each case's signed headers are printed.
With "time" ("YYYYMMDDTHHMMSSZ") botocore signs at that time instead of now.
Prints one JSON object per line:
  {"name": ..., "status": int, "code": str, "message": str, "authorization": str,
   "response": str}
or, with sign_only, {"name": ..., "headers": [[name, value], ...]}.
"""

import datetime
import http.client
import json
import sys
import urllib.parse

import botocore.auth
import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from botocore.httpsession import URLLib3Session

_session = None


def signed_request(cfg, case):
    target = case["path"] + ("?" + case["query"] if case.get("query") else "")
    body = case.get("body") or None
    req = AWSRequest(method=case["method"], url=cfg["url"] + target,
                     data=body.encode() if body else None)
    for name, value in case.get("headers") or []:
        # HTTPHeaders appends on assignment, so repeated names are kept.
        req.headers[name] = value
    creds = Credentials(cfg["akid"], cfg["secret"])
    SigV4Auth(creds, cfg["service"], cfg["region"]).add_auth(req)
    return req, target, body


def send_urllib3(case, req):
    global _session
    if _session is None:
        _session = URLLib3Session()
    resp = _session.send(req.prepare())
    message = ""
    if resp.status_code != 200:
        try:
            message = json.loads(resp.content).get("message", "")
        except ValueError:
            message = resp.content.decode(errors="replace")
    return {"name": case["name"], "status": resp.status_code,
            "code": resp.headers.get("X-Amzn-ErrorType") or "", "message": message,
            "authorization": req.headers.get("Authorization", ""),
            "response": resp.content.decode(errors="replace")}


def send_case(cfg, case):
    req, target, body = signed_request(cfg, case)
    if case.get("transport") == "urllib3":
        return send_urllib3(case, req)
    base = cfg["url"]
    u = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    conn.putrequest(case["method"], target, skip_accept_encoding=True)
    for name, value in req.headers.items():
        conn.putheader(name, value)
    data = body.encode() if body else None
    if data is not None:
        conn.putheader("Content-Length", str(len(data)))
    elif case["method"] in ("POST", "PUT", "DELETE"):
        conn.putheader("Content-Length", "0")
    conn.endheaders(data)
    resp = conn.getresponse()
    payload = resp.read()
    conn.close()
    message = ""
    if resp.status != 200:
        try:
            message = json.loads(payload).get("message", "")
        except ValueError:
            message = payload.decode(errors="replace")
    return {"name": case["name"], "status": resp.status,
            "code": resp.getheader("X-Amzn-ErrorType") or "", "message": message,
            "authorization": req.headers.get("Authorization", ""),
            "response": payload.decode(errors="replace")}


def client_calls(cfg):
    session = botocore.session.get_session()
    client = session.create_client(
        "backup", region_name=cfg["region"], endpoint_url=cfg["url"],
        aws_access_key_id=cfg["akid"], aws_secret_access_key=cfg["secret"],
        config=Config(retries={"max_attempts": 1, "mode": "standard"}))
    arn = "arn:aws:backup:us-east-1:111111111111:recovery-point:abc/def"
    calls = [
        ("client ListBackupVaults", lambda: client.list_backup_vaults(MaxResults=5)),
        ("client DescribeRecoveryPoint", lambda: client.describe_recovery_point(
            BackupVaultName="v1", RecoveryPointArn=arn)),
        ("client ListBackupJobs", lambda: client.list_backup_jobs(
            ByAccountId="*", ByResourceArn="arn:aws:s3:::bucket/x y")),
        ("client CreateBackupVault", lambda: client.create_backup_vault(
            BackupVaultName="vault-1", BackupVaultTags={"k": "v w"})),
        ("client ListBackupJobSummaries", lambda: client.list_backup_job_summaries(AccountId="*")),
        ("client StopBackupJob", lambda: client.stop_backup_job(BackupJobId="job-1")),
        ("client DeleteBackupVault", lambda: client.delete_backup_vault(BackupVaultName="vault-1")),
    ]
    out = []
    for name, call in calls:
        try:
            call()
            out.append({"name": name, "status": 200, "code": "", "message": ""})
        except ClientError as e:
            out.append({"name": name, "status": e.response["ResponseMetadata"]["HTTPStatusCode"],
                        "code": e.response["Error"]["Code"], "message": e.response["Error"]["Message"]})
    return out


def main():
    cfg = json.load(sys.stdin)
    if cfg.get("time"):
        fixed = datetime.datetime.strptime(cfg["time"], "%Y%m%dT%H%M%SZ")
        botocore.auth.get_current_datetime = lambda: fixed
    if cfg.get("sign_only"):
        for case in cfg["cases"]:
            req, _, _ = signed_request(cfg, case)
            print(json.dumps({"name": case["name"], "headers": list(req.headers.items())}))
        sys.stdout.flush()
        return
    for case in cfg["cases"]:
        print(json.dumps(send_case(cfg, case)), flush=True)
    if cfg.get("client"):
        for r in client_calls(cfg):
            print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
