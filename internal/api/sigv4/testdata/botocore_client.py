"""Sign requests with botocore and send them to the sigv4 test server.

Reads one JSON object on stdin:
  {"url": "http://127.0.0.1:PORT", "akid": ..., "secret": ..., "region": ...,
   "service": ..., "cases": [{"name", "method", "path", "query", "headers", "body"}]}
Each case is signed with botocore.auth.SigV4Auth over an AWSRequest and sent
with http.client exactly as shaped (raw path and raw query). Then the real
botocore "backup" client makes a few calls. Prints one JSON object per line:
  {"name": ..., "status": int, "code": str, "message": str}
"""

import http.client
import json
import sys
import urllib.parse

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError


def send_case(cfg, case):
    base = cfg["url"]
    target = case["path"] + ("?" + case["query"] if case.get("query") else "")
    body = case.get("body") or None
    req = AWSRequest(method=case["method"], url=base + target,
                     data=body.encode() if body else None)
    for name, value in case.get("headers") or []:
        # HTTPHeaders appends on assignment, so repeated names are kept.
        req.headers[name] = value
    creds = Credentials(cfg["akid"], cfg["secret"])
    SigV4Auth(creds, cfg["service"], cfg["region"]).add_auth(req)

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
            "authorization": req.headers.get("Authorization", "")}


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
    for case in cfg["cases"]:
        print(json.dumps(send_case(cfg, case)), flush=True)
    if cfg.get("client"):
        for r in client_calls(cfg):
            print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
