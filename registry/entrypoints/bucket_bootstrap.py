# swarmai: the registry's bucket bootstrap, run by mlflow-entrypoint.sh before
# MLflow starts (swarmai inlines this file there, from its first blank line on,
# when it renders a stack: see swarmai/render/scripts.py).
#
# Waits for the database (MLflow exits at once when it cannot migrate it) and
# for the S3 store, then creates the artifact bucket when it is missing, so the
# first deploy needs no separate bootstrap step, services may start in any
# order, and a re-run changes nothing.
#
# Environment: SWARMAI_DB_HOST (optional: no database to wait for),
# SWARMAI_BUCKET, MLFLOW_S3_ENDPOINT_URL, and AWS_SHARED_CREDENTIALS_FILE (the
# S3 keys' secret file, set by the entrypoint).

import os
import socket
import sys
import time

import boto3
from botocore.exceptions import BotoCoreError, ClientError

# Wait for the database first: MLflow exits at once when it cannot migrate it.
db_host = os.environ.get("SWARMAI_DB_HOST")
deadline = time.monotonic() + 120
while db_host:
    try:
        socket.create_connection((db_host, 5432), timeout=2).close()
        break
    except OSError as error:
        if time.monotonic() > deadline:
            sys.exit(f"swarmai: database {db_host}:5432 not reachable after 120 s: {error}")
        time.sleep(1)

bucket = os.environ["SWARMAI_BUCKET"]
s3 = boto3.client("s3", endpoint_url=os.environ["MLFLOW_S3_ENDPOINT_URL"])
deadline = time.monotonic() + 120
while True:
    try:
        s3.head_bucket(Bucket=bucket)
        print(f"swarmai: bucket {bucket} exists", flush=True)
        break
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in ("404", "NoSuchBucket", "NotFound"):
            s3.create_bucket(Bucket=bucket)
            print(f"swarmai: created bucket {bucket}", flush=True)
            break
        last = f"{code}: {error}"
    except BotoCoreError as error:
        last = str(error)
    if time.monotonic() > deadline:
        sys.exit(f"swarmai: S3 store not ready after 120 s: {last}")
    time.sleep(2)
