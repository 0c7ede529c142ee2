#!/bin/sh
# swarmai: start the managed S3 store (SeaweedFS or MinIO) with keys from a
# Docker secret holding an AWS shared-credentials file:
#   [default]
#   aws_access_key_id = ...
#   aws_secret_access_key = ...
# The keys are handed to the server inside this process only; they never appear
# in the service's environment, labels or command line.
set -eu

creds="/run/secrets/${SWARMAI_S3_SECRET}"
key() { sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*//p" "$creds" | head -n 1 | tr -d '\r'; }
access=$(key aws_access_key_id)
secret=$(key aws_secret_access_key)
if [ -z "$access" ] || [ -z "$secret" ]; then
  echo "swarmai: $creds must hold aws_access_key_id and aws_secret_access_key" >&2
  exit 1
fi
# SeaweedFS takes its keys in a JSON file written below: a key holding `"` or
# `\` could add an identity of its own there.  Generated keys (and AWS's) are
# letters, digits and /+=; allow a few more, nothing that JSON treats specially.
case "$access$secret" in
  *[!A-Za-z0-9/+=._~-]*)
    echo "swarmai: the keys in $creds may hold only letters, digits and /+=._~- ;" \
      "generate new ones with: swarmai secrets rotate FILE $SWARMAI_S3_SECRET" >&2
    exit 1 ;;
esac
case "$access:$secret" in
  minioadmin:*|*:minioadmin|admin:admin|*:password|*:changeme)
    echo "swarmai: refusing well-known default S3 credentials; put generated keys in $creds" >&2
    exit 1 ;;
esac

case "$SWARMAI_S3_BACKEND" in
  seaweedfs)
    umask 077
    printf '{"identities":[{"name":"swarmai","credentials":[{"accessKey":"%s","secretKey":"%s"}],"actions":["Admin","Read","Write","List","Tagging"]}]}\n' \
      "$access" "$secret" > /tmp/s3.json
    # preStopSeconds: a volume server alone with its master has no peer to let
    # writes drain to first; the default 10 s wait only delays every stop.
    exec weed server -dir=/data -master.volumeSizeLimitMB=1024 -volume.max=0 \
      -volume.preStopSeconds=0 -s3 -s3.port=8333 -s3.config=/tmp/s3.json ;;
  minio)
    export MINIO_ROOT_USER="$access" MINIO_ROOT_PASSWORD="$secret"
    exec minio server /data --address :9000 --console-address 127.0.0.1:9001 ;;
  *)
    echo "swarmai: unknown SWARMAI_S3_BACKEND '$SWARMAI_S3_BACKEND'" >&2
    exit 1 ;;
esac
